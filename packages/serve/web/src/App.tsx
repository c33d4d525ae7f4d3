import { useEffect, useRef, useState } from "react";
import { Overview } from "./Overview.js";
import { ReviewQueuePage } from "./ReviewQueue.js";

const REVIEWER_KEY = "ats-lora.reviewer";

type Page = "review" | "overview";

/** #/overview, #/review, or #/review/ID: a link to one interaction (shown first, whoever reviewed it). */
function pageOf(hash: string): { page: Page; item: string | null } {
  if (hash === "#/overview") return { page: "overview", item: null };
  const item = /^#\/review\/(.+)$/.exec(hash)?.[1];
  return { page: "review", item: item === undefined ? null : decodeURIComponent(item) };
}

/** The page's frame: the reviewer's name (asked once, kept in this browser), and the queue or the overview. */
export function App() {
  const [reviewer, setReviewer] = useState<string | null>(() => localStorage.getItem(REVIEWER_KEY));
  const [{ page, item }, setPage] = useState(() => pageOf(window.location.hash));
  const [renaming, setRenaming] = useState(false);

  useEffect(() => {
    const onHash = () => setPage(pageOf(window.location.hash));
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, []);
  useEffect(() => {
    document.title = page === "overview" ? "Overview · ats-lora review" : "Review queue · ats-lora review";
  }, [page]);

  const saveName = (name: string) => {
    localStorage.setItem(REVIEWER_KEY, name);
    setReviewer(name);
    setRenaming(false);
  };

  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="top">
        <span className="brand">ats-lora review</span>
        <nav aria-label="Pages">
          <a href="#/review" aria-current={page === "review" ? "page" : undefined}>
            Review queue
          </a>
          <a href="#/overview" aria-current={page === "overview" ? "page" : undefined}>
            Overview
          </a>
        </nav>
        {reviewer !== null && !renaming && (
          <span className="who">
            Reviewing as <strong>{reviewer}</strong>{" "}
            <button type="button" className="link" onClick={() => setRenaming(true)}>
              Change name
            </button>
          </span>
        )}
      </header>
      <main id="main">
        {reviewer === null || renaming ? (
          <NameForm initial={reviewer ?? ""} onSave={saveName} onCancel={reviewer === null ? undefined : () => setRenaming(false)} />
        ) : page === "overview" ? (
          <Overview />
        ) : (
          <ReviewQueuePage reviewer={reviewer} linked={item} />
        )}
      </main>
    </>
  );
}

/** Asks the reviewer's name once; every review is saved under it. */
function NameForm({ initial, onSave, onCancel }: { initial: string; onSave: (name: string) => void; onCancel?: () => void }) {
  const [name, setName] = useState(initial);
  const [problem, setProblem] = useState<string | null>(null);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);
  return (
    <form
      className="card name-form"
      aria-labelledby="name-title"
      onSubmit={(event) => {
        event.preventDefault();
        const trimmed = name.trim();
        if (trimmed === "") {
          setProblem("Enter your name: each review is saved under it.");
          input.current?.focus();
          return;
        }
        onSave(trimmed);
      }}
    >
      <h1 id="name-title">Who is reviewing?</h1>
      <p>Your reviews are saved under this name, and this browser remembers it.</p>
      <label htmlFor="reviewer-name">Your name</label>
      <input id="reviewer-name" ref={input} value={name} maxLength={200} autoComplete="name" onChange={(event) => setName(event.target.value)} aria-describedby={problem ? "name-problem" : undefined} />
      {problem && (
        <p id="name-problem" role="alert" className="problem">
          {problem}
        </p>
      )}
      <div className="actions">
        <button type="submit" className="primary">
          Start reviewing
        </button>
        {onCancel && (
          <button type="button" onClick={onCancel}>
            Cancel
          </button>
        )}
      </div>
    </form>
  );
}

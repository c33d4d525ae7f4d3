import { useCallback, useEffect, useRef, useState } from "react";
import { api, ApiError, type QueueItem, type ReviewQueue, type Review, type TaskInfo } from "./api.js";
import { AnswerView, parseJson } from "./AnswerView.js";
import { TextDiff } from "./TextDiff.js";

const RATINGS: Array<{ value: number; words: string }> = [
  { value: 1, words: "wrong" },
  { value: 2, words: "poor" },
  { value: 3, words: "partly right" },
  { value: 4, words: "good" },
  { value: 5, words: "ideal" },
];

/** The problem the page shows after a failed action, with the server's details. */
interface Problem {
  message: string;
  details: string[];
}

function problemOf(error: unknown): Problem {
  if (error instanceof ApiError) return { message: error.message, details: error.details };
  return { message: error instanceof Error ? error.message : String(error), details: [] };
}

/** A key the page acts on only when the reviewer is not typing. */
function typingIn(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  if (target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement || target.isContentEditable) return true;
  return target instanceof HTMLInputElement && !["radio", "checkbox", "button", "submit"].includes(target.type);
}

/** The queue of one reviewer: one interaction at a time, reviewed by keyboard or pointer. */
export function ReviewQueuePage({ reviewer, linked }: { reviewer: string; linked: string | null }) {
  const [tasks, setTasks] = useState<TaskInfo[]>([]);
  const [task, setTask] = useState<string | null>(null);
  const [queue, setQueue] = useState<ReviewQueue | null>(null);
  const [currentId, setCurrentId] = useState<string | null>(null);
  const [skipped, setSkipped] = useState<ReadonlySet<string>>(new Set());
  const [saved, setSaved] = useState<Array<{ feedbackId: string; interactionId: string }>>([]);
  const [restore, setRestore] = useState<Review | null>(null);
  const [status, setStatus] = useState("");
  const [problem, setProblem] = useState<Problem | null>(null);
  /** The interaction a link (#/review/ID) named: shown first, then the queue goes on. */
  const [pinned, setPinned] = useState<QueueItem | null>(null);
  const taskSelect = useRef<HTMLSelectElement>(null);

  /** Only the newest load shows: a quick change of task starts several, which may answer out of order. */
  const loads = useRef(0);
  const load = useCallback(
    async (preferred: string | null, skip: ReadonlySet<string>) => {
      const ticket = ++loads.current;
      try {
        const next = await api.queue(reviewer, task);
        if (ticket !== loads.current) return;
        setQueue(next);
        const waiting = next.data.filter((item) => !skip.has(item.id));
        setCurrentId(waiting.some((item) => item.id === preferred) ? preferred : (waiting[0]?.id ?? null));
        setProblem(null);
      } catch (error) {
        if (ticket === loads.current) setProblem(problemOf(error));
      }
    },
    [reviewer, task],
  );

  useEffect(() => {
    api.tasks().then((list) => setTasks(list.data), (error: unknown) => setProblem(problemOf(error)));
  }, []);
  useEffect(() => {
    if (linked === null) return;
    api.interaction(linked).then(
      (item) => {
        setPinned(item);
        setCurrentId(item.id);
      },
      (error: unknown) => setProblem(problemOf(error)),
    );
  }, [linked]);
  useEffect(() => {
    void load(linked, skipped);
    // Only a new reviewer or task starts the queue over (load changes with them); skips and saves move through it.
  }, [load]);

  const current = (pinned !== null && pinned.id === currentId ? pinned : queue?.data.find((item) => item.id === currentId)) ?? null;
  const unpin = () => {
    if (pinned === null) return;
    setPinned(null);
    window.history.replaceState(null, "", "#/review");
  };
  const taskInfo = (name: string): TaskInfo => tasks.find((info) => info.task === name) ?? { task: name, answer: "text", instruction: null, schema: null };

  const onSaved = async (feedbackId: string, item: QueueItem, rating: number) => {
    setSaved((stack) => [...stack, { feedbackId, interactionId: item.id }]);
    setRestore(null);
    unpin();
    setStatus(`Saved: ${item.task} ${item.id} rated ${rating}.`);
    await load(null, skipped);
  };

  const skip = () => {
    if (current === null) return;
    const nextSkipped = new Set(skipped).add(current.id);
    setSkipped(nextSkipped);
    setRestore(null);
    unpin();
    const waiting = queue!.data.filter((item) => !nextSkipped.has(item.id));
    setCurrentId(waiting[0]?.id ?? null);
    setStatus(`Skipped ${current.id}.`);
  };

  const undo = async () => {
    const last = saved[saved.length - 1];
    if (last === undefined) return;
    try {
      const { feedback } = await api.withdrawReview(last.feedbackId, reviewer);
      setSaved((stack) => stack.slice(0, -1));
      const nextSkipped = new Set(skipped);
      nextSkipped.delete(last.interactionId);
      setSkipped(nextSkipped);
      setRestore(feedback);
      setStatus(`Undone: your review of ${last.interactionId} is taken back; it is shown again.`);
      await load(last.interactionId, nextSkipped);
    } catch (error) {
      setProblem(problemOf(error));
    }
  };

  const waiting = queue === null ? 0 : queue.pending - queue.data.filter((item) => skipped.has(item.id)).length;

  return (
    <div className="queue">
      <div className="queue-bar">
        <h1>Review queue</h1>
        <label className="inline">
          Task{" "}
          <select
            ref={taskSelect}
            value={task ?? ""}
            aria-keyshortcuts="t"
            onKeyDown={(event) => {
              // Enter or Esc: back to the item, whose keys then work again.
              if (event.key === "Enter" || event.key === "Escape") {
                event.preventDefault();
                document.querySelector<HTMLElement>("article.item")?.focus();
              }
            }}
            onChange={(event) => {
              setTask(event.target.value === "" ? null : event.target.value);
              setSkipped(new Set());
              setStatus("");
            }}
          >
            <option value="">All tasks</option>
            {tasks.map((info) => (
              <option key={info.task} value={info.task}>
                {info.task.replace(/_/g, " ")}
              </option>
            ))}
          </select>
        </label>
        <span className="count">{queue === null ? "loading…" : `${waiting} waiting for you${skipped.size > 0 ? `, ${skipped.size} skipped` : ""}`}</span>
      </div>
      <p className="status" role="status" aria-live="polite">
        {status}
      </p>
      {problem !== null && current === null && <ProblemNote problem={problem} />}
      {current !== null ? (
        <ItemReview
          key={`${current.id}:${restore?.id ?? ""}`}
          item={current}
          task={taskInfo(current.task)}
          reviewer={reviewer}
          restore={restore !== null && restore.interaction_id === current.id ? restore : null}
          canUndo={saved.length > 0}
          onSaved={onSaved}
          onSkip={skip}
          onUndo={undo}
          onChooseTask={() => taskSelect.current?.focus()}
        />
      ) : (
        queue !== null && (
          <section className="card empty" aria-label="Queue finished">
            <h2>Nothing left to review{task === null ? "" : ` for ${task.replace(/_/g, " ")}`}.</h2>
            {skipped.size > 0 && (
              <button type="button" onClick={() => { setSkipped(new Set()); void load(null, new Set()); }}>
                Review the {skipped.size} skipped again
              </button>
            )}
            {saved.length > 0 && (
              <button type="button" onClick={() => void undo()}>
                Undo last save
              </button>
            )}
          </section>
        )
      )}
    </div>
  );
}

function ProblemNote({ problem }: { problem: Problem }) {
  return (
    <div className="problem" role="alert">
      <p>{problem.message}</p>
      {problem.details.length > 0 && (
        <ul>
          {problem.details.map((detail) => (
            <li key={detail}>{detail}</li>
          ))}
        </ul>
      )}
    </div>
  );
}

/** Where the ideal answer starts: the model's answer, pretty-printed when it is JSON. */
function startingIdeal(item: QueueItem, task: TaskInfo): string {
  if (task.answer !== "json") return item.response;
  const parsed = parseJson(item.response);
  return parsed.ok ? JSON.stringify(parsed.value, null, 2) : item.response;
}

interface ItemReviewProps {
  item: QueueItem;
  task: TaskInfo;
  reviewer: string;
  /** A review just taken back: the form starts from it. */
  restore: Review | null;
  canUndo: boolean;
  onSaved: (feedbackId: string, item: QueueItem, rating: number) => Promise<void>;
  onSkip: () => void;
  onUndo: () => Promise<void>;
  /** Key T: the task filter. */
  onChooseTask: () => void;
}

function ItemReview({ item, task, reviewer, restore, canUndo, onSaved, onSkip, onUndo, onChooseTask }: ItemReviewProps) {
  const start = startingIdeal(item, task);
  const [rating, setRating] = useState<number | null>(restore?.rating ?? null);
  const [correct, setCorrect] = useState<string[]>(restore?.correct_points ?? []);
  const [incorrect, setIncorrect] = useState<string[]>(restore?.incorrect_points ?? []);
  // What is typed in a point's field and not yet added: saved with the review rather than lost.
  const [correctDraft, setCorrectDraft] = useState("");
  const [incorrectDraft, setIncorrectDraft] = useState("");
  const [ideal, setIdeal] = useState(restore?.ideal_response ?? start);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [saving, setSaving] = useState(false);
  const panel = useRef<HTMLElement>(null);
  const correctInput = useRef<HTMLInputElement>(null);
  const incorrectInput = useRef<HTMLInputElement>(null);
  const idealArea = useRef<HTMLTextAreaElement>(null);
  const ratingGroup = useRef<HTMLFieldSetElement>(null);

  // A new item takes the focus, unless the reviewer is in the task filter (its arrow keys reload the queue).
  useEffect(() => {
    if (document.activeElement === null || document.activeElement === document.body) panel.current?.focus();
  }, []);

  const json = task.answer === "json";
  const idealCheck = json ? parseJson(ideal) : null;
  const unchanged = sameAnswer(ideal, start, json) || sameAnswer(ideal, item.response, json);

  const save = async () => {
    if (saving) return;
    if (rating === null) {
      setProblem({ message: "Choose a rating first: keys 1 to 5.", details: [] });
      ratingGroup.current?.querySelector<HTMLInputElement>("input")?.focus();
      return;
    }
    let idealResponse: string | null = null;
    if (!unchanged && ideal.trim() !== "") {
      if (idealCheck !== null && !idealCheck.ok) {
        setProblem({ message: `The ideal answer is not valid JSON, so nothing was saved: ${idealCheck.error}`, details: ["A JSON task's ideal answer must be JSON: correct it, or reset it to the model's answer."] });
        idealArea.current?.focus();
        return;
      }
      // A JSON answer keeps the model's layout: one line when the model wrote one line.
      idealResponse = idealCheck?.ok ? JSON.stringify(idealCheck.value, null, item.response.includes("\n") ? 2 : undefined) : ideal.trim();
    }
    setSaving(true);
    try {
      const withDraft = (points: string[], draft: string) => (draft.trim() === "" ? points : [...points, draft.trim()]);
      const { feedback_id } = await api.saveReview({
        interaction_id: item.id,
        rating,
        correct_points: withDraft(correct, correctDraft),
        incorrect_points: withDraft(incorrect, incorrectDraft),
        ideal_response: idealResponse,
        reviewer,
      });
      await onSaved(feedback_id, item, rating);
    } catch (error) {
      setProblem(problemOf(error));
      setSaving(false);
    }
  };

  const latest = useRef({ save, onSkip, onUndo, canUndo, onChooseTask });
  latest.current = { save, onSkip, onUndo, canUndo, onChooseTask };
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        void latest.current.save();
        return;
      }
      if (event.ctrlKey || event.metaKey || event.altKey || typingIn(event.target)) return;
      const key = event.key.toLowerCase();
      if (/^[1-5]$/.test(key)) {
        setRating(Number(key));
        setProblem(null);
      }
      else if (key === "c") correctInput.current?.focus();
      else if (key === "i") incorrectInput.current?.focus();
      else if (key === "e") idealArea.current?.focus();
      else if (key === "s") void latest.current.save();
      else if (key === "n") latest.current.onSkip();
      else if (key === "u" && latest.current.canUndo) void latest.current.onUndo();
      else if (key === "t") latest.current.onChooseTask();
      else return;
      event.preventDefault();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);

  const backToItem = () => panel.current?.focus();

  return (
    <article className="item" ref={panel} tabIndex={-1} aria-labelledby="item-title" data-interaction-id={item.id}>
      <h2 id="item-title">
        <span className="badge">{item.task.replace(/_/g, " ")}</span> {item.id}
        <span className="meta">
          answered by {item.model} · {new Date(item.created_at).toLocaleString()}
        </span>
      </h2>
      <div className="columns">
        <section className="card input" aria-labelledby="input-title">
          <h3 id="input-title">Input</h3>
          <p className="query">{item.query}</p>
          {item.context.map((passage, index) => (
            <pre className="passage" key={index} tabIndex={0} aria-label={`Context ${index + 1} of ${item.context.length}`}>
              {passage}
            </pre>
          ))}
        </section>
        <section className="card answer" aria-labelledby="answer-title">
          <h3 id="answer-title">Model's answer</h3>
          <AnswerView text={item.response} json={json} />
          {item.feedback.length > 0 && <OtherReviews reviews={item.feedback} />}
        </section>
      </div>

      <form
        className="card review"
        aria-labelledby="review-title"
        onSubmit={(event) => {
          event.preventDefault();
          void save();
        }}
      >
        <h3 id="review-title">Your review</h3>
        {problem !== null && <ProblemNote problem={problem} />}
        <fieldset className="rating" ref={ratingGroup}>
          <legend>Rating (keys 1–5)</legend>
          {RATINGS.map(({ value, words }) => (
            <label key={value} className={rating === value ? "chosen" : undefined}>
              <input type="radio" name="rating" value={value} checked={rating === value} onChange={() => setRating(value)} />
              <span className="digit">{value}</span> {words}
            </label>
          ))}
        </fieldset>
        <div className="points">
          <PointList id="correct" label="Correct points" hint="C" tone="good" points={correct} setPoints={setCorrect} draft={correctDraft} setDraft={setCorrectDraft} input={correctInput} onLeave={backToItem} />
          <PointList id="incorrect" label="Incorrect points" hint="I" tone="bad" points={incorrect} setPoints={setIncorrect} draft={incorrectDraft} setDraft={setIncorrectDraft} input={incorrectInput} onLeave={backToItem} />
        </div>
        <div className="ideal">
          <label htmlFor="ideal-answer">
            Ideal answer <span className="key-hint">(E to edit, Esc to leave, Ctrl+Enter saves)</span>
          </label>
          <textarea
            id="ideal-answer"
            ref={idealArea}
            value={ideal}
            rows={json ? 14 : 8}
            spellCheck={!json}
            aria-describedby="ideal-state"
            onChange={(event) => {
              setIdeal(event.target.value);
              setProblem(null);
            }}
            onKeyDown={(event) => {
              if (event.key === "Escape") {
                event.preventDefault();
                backToItem();
              }
            }}
          />
          <p id="ideal-state" className={idealCheck !== null && !idealCheck.ok ? "flag" : "quiet"}>
            {unchanged
              ? "Unchanged: the model's answer stands; no ideal answer is saved."
              : idealCheck === null
                ? "Edited: saved as the ideal answer."
                : idealCheck.ok
                  ? "Edited, valid JSON: saved as the ideal answer."
                  : `Not valid JSON: ${idealCheck.error}`}
          </p>
          {!unchanged && <TextDiff before={start} after={ideal} />}
          <button type="button" className="link" onClick={() => setIdeal(start)} disabled={unchanged}>
            Reset to the model's answer
          </button>
        </div>
        <div className="actions">
          <button type="submit" className="primary" disabled={saving}>
            Save review <kbd>S</kbd>
          </button>
          <button type="button" onClick={onSkip}>
            Skip <kbd>N</kbd>
          </button>
          <button type="button" onClick={() => void onUndo()} disabled={!canUndo}>
            Undo last save <kbd>U</kbd>
          </button>
        </div>
        <p className="quiet keys">
          Keys: <kbd>1</kbd>–<kbd>5</kbd> rate · <kbd>C</kbd> correct point · <kbd>I</kbd> incorrect point · <kbd>E</kbd> ideal answer · <kbd>Esc</kbd> back ·{" "}
          <kbd>S</kbd> or <kbd>Ctrl</kbd>+<kbd>Enter</kbd> save · <kbd>N</kbd> skip · <kbd>U</kbd> undo · <kbd>T</kbd> task
        </p>
      </form>
    </article>
  );
}

/** Whether an edited ideal says the same as `other`: equal text, or for JSON equal values. */
function sameAnswer(ideal: string, other: string, json: boolean): boolean {
  if (ideal.trim() === other.trim()) return true;
  if (!json) return false;
  const a = parseJson(ideal);
  const b = parseJson(other);
  return a.ok && b.ok && JSON.stringify(a.value) === JSON.stringify(b.value);
}

interface PointListProps {
  id: string;
  label: string;
  hint: string;
  tone: "good" | "bad";
  points: string[];
  setPoints: (points: string[]) => void;
  draft: string;
  setDraft: (draft: string) => void;
  input: React.RefObject<HTMLInputElement | null>;
  onLeave: () => void;
}

/** A list of points: Enter adds what is typed and stays for the next; Esc adds it and goes back to the item, as Enter on an empty field does. */
function PointList({ id, label, hint, tone, points, setPoints, draft, setDraft, input, onLeave }: PointListProps) {
  const add = () => {
    const point = draft.trim();
    if (point !== "") setPoints([...points, point]);
    setDraft("");
  };
  return (
    <div className={`point-list ${tone}`}>
      <label htmlFor={`new-${id}`}>
        {label} <span className="key-hint">({hint})</span>
      </label>
      {points.length > 0 && (
        <ul aria-label={label}>
          {points.map((point, index) => (
            <li key={`${index}:${point}`}>
              <span>{point}</span>
              <button type="button" className="link" aria-label={`Remove ${label.toLowerCase().replace(/s$/, "")}: ${point}`} onClick={() => setPoints(points.filter((_, at) => at !== index))}>
                Remove
              </button>
            </li>
          ))}
        </ul>
      )}
      <div className="add-point">
        <input
          id={`new-${id}`}
          ref={input}
          value={draft}
          placeholder="Type a point, Enter to add"
          maxLength={2000}
          onChange={(event) => setDraft(event.target.value)}
          onKeyDown={(event) => {
            if (event.key === "Enter" && !event.ctrlKey && !event.metaKey) {
              event.preventDefault();
              if (draft.trim() === "") onLeave();
              else add();
            } else if (event.key === "Escape") {
              event.preventDefault();
              add();
              onLeave();
            }
          }}
        />
        <button type="button" onClick={add} disabled={draft.trim() === ""}>
          Add
        </button>
      </div>
    </div>
  );
}

function OtherReviews({ reviews }: { reviews: Review[] }) {
  return (
    <section className="others" aria-labelledby="others-title">
      <h4 id="others-title">Reviewed by others</h4>
      <ul>
        {reviews.map((review) => (
          <li key={review.id}>
            <strong>{review.reviewer}</strong> rated it <strong>{review.rating}</strong>/5 on {new Date(review.created_at).toLocaleDateString()}
            {review.correct_points.length > 0 && <p className="good">Correct: {review.correct_points.join("; ")}</p>}
            {review.incorrect_points.length > 0 && <p className="bad">Incorrect: {review.incorrect_points.join("; ")}</p>}
            {review.ideal_response !== null && (
              <details>
                <summary>Their ideal answer</summary>
                <pre>{review.ideal_response}</pre>
              </details>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}

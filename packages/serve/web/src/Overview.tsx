import { useEffect, useState } from "react";
import { api, ApiError, type Job, type LoopOverview } from "./api.js";

const RATING_KEYS = ["1", "2", "3", "4", "5"] as const;

/** The loop at a glance: reviews per task and rating, progress toward build-db's minimum, drift, adapters, jobs. */
export function Overview() {
  const [overview, setOverview] = useState<LoopOverview | null>(null);
  const [problem, setProblem] = useState<string | null>(null);

  useEffect(() => {
    let stopped = false;
    let timer: number | undefined;
    const refresh = async () => {
      try {
        const next = await api.overview();
        if (stopped) return;
        setOverview(next);
        setProblem(null);
        // A running job is followed closely; otherwise the figures change only as reviews arrive.
        timer = window.setTimeout(refresh, next.jobs.some((job) => job.status === "running") ? 2_000 : 10_000);
      } catch (error) {
        if (stopped) return;
        setProblem(error instanceof ApiError || error instanceof Error ? error.message : String(error));
        timer = window.setTimeout(refresh, 10_000);
      }
    };
    void refresh();
    return () => {
      stopped = true;
      window.clearTimeout(timer);
    };
  }, []);

  if (overview === null) {
    return (
      <div className="overview">
        <h1>Overview</h1>
        {problem === null ? <p role="status">Loading…</p> : <p role="alert" className="problem">{problem}</p>}
      </div>
    );
  }
  return (
    <div className="overview">
      <h1>Overview</h1>
      {problem !== null && (
        <p role="alert" className="problem">
          {problem}
        </p>
      )}
      <div className="grid">
        <Reviews overview={overview} />
        <Drift overview={overview} />
        <Jobs jobs={overview.jobs} />
        <Adapters overview={overview} />
      </div>
    </div>
  );
}

function percent(fraction: number): string {
  return `${Math.round(fraction * 100)}%`;
}

function Reviews({ overview }: { overview: LoopOverview }) {
  const stats = overview.stats;
  if (stats === null) {
    return (
      <section className="card wide" aria-labelledby="reviews-title">
        <h2 id="reviews-title">Reviews</h2>
        <p>No interactions yet: the ATS's answers through this server, or <code>ats-lora collect import FILE</code>, put them here.</p>
      </section>
    );
  }
  const { min_samples: target } = stats;
  const tasks = Object.entries(stats.by_task);
  const most = Math.max(1, ...tasks.flatMap(([, task]) => RATING_KEYS.map((key) => task.rating_histogram[key])));
  return (
    <section className="card wide" aria-labelledby="reviews-title">
      <h2 id="reviews-title">Reviews</h2>
      <label className="progress-label" htmlFor="min-samples">
        {target.reviewed} of {target.target} reviewed interactions needed for training (feedback.min_samples): {percent(target.progress)}
        {target.met ? " — enough to build the training data" : ""}
      </label>
      <progress id="min-samples" max={target.target} value={Math.min(target.reviewed, target.target)} />
      <p className="quiet">
        {stats.interactions} interactions, {stats.feedback} reviews by {stats.reviewers} reviewer{stats.reviewers === 1 ? "" : "s"}, {stats.pending_review} awaiting review, {stats.with_ideal_response} with an ideal answer.
      </p>
      <table>
        <caption>Per task: how many are reviewed, and the ratings given</caption>
        <thead>
          <tr>
            <th scope="col">Task</th>
            <th scope="col">Interactions</th>
            <th scope="col">Reviewed</th>
            <th scope="col">Awaiting</th>
            <th scope="col">Mean rating</th>
            <th scope="col">Ratings 1–5</th>
          </tr>
        </thead>
        <tbody>
          {tasks.map(([name, task]) => (
            <tr key={name}>
              <th scope="row">{name.replace(/_/g, " ")}</th>
              <td>{task.interactions}</td>
              <td>{task.reviewed}</td>
              <td>{task.pending_review}</td>
              <td>{task.mean_rating === null ? "—" : task.mean_rating.toFixed(2)}</td>
              <td>
                <span className="bars" role="img" aria-label={RATING_KEYS.map((key) => `${task.rating_histogram[key]} rated ${key}`).join(", ")}>
                  {RATING_KEYS.map((key) => (
                    <span key={key} className={`bar r${key}`} style={{ height: `${Math.round((task.rating_histogram[key] / most) * 100)}%` }} title={`${task.rating_histogram[key]} rated ${key}`} />
                  ))}
                </span>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function Drift({ overview }: { overview: LoopOverview }) {
  const data = overview.training_data;
  return (
    <section className="card" aria-labelledby="drift-title">
      <h2 id="drift-title">Drift of corrections</h2>
      {data === null ? (
        <p>No training data built yet: <code>ats-lora build-db</code> turns the reviews into training pairs and measures how far reviewers' ideal answers are from the model's.</p>
      ) : (
        <>
          <p className="quiet">Last build-db {new Date(data.built_at).toLocaleString()}: {data.rows.sft.total} SFT rows ({data.rows.sft.train} train, {data.rows.sft.val} validation, {data.rows.sft.test} test).</p>
          {data.drift.corrections === 0 ? (
            <p>No corrections yet: no reviewer's ideal answer differs from the model's.</p>
          ) : (
            <>
              <p>
                {data.drift.corrections} corrections: {data.drift.substantial} substantial (similarity below {data.drift.similarity_threshold}), {data.drift.refinements} refinements. Drift (1 − cosine) mean {data.drift.mean}, median {data.drift.median}, p90 {data.drift.p90}.
              </p>
              <DriftHistogram histogram={data.drift.histogram} />
            </>
          )}
        </>
      )}
    </section>
  );
}

function DriftHistogram({ histogram }: { histogram: Array<{ from: number; to: number; count: number }> }) {
  const most = Math.max(1, ...histogram.map((bin) => bin.count));
  return (
    <figure className="histogram">
      <span className="bars tall" role="img" aria-label={histogram.map((bin) => `${bin.count} from ${bin.from} to ${bin.to}`).join(", ")}>
        {histogram.map((bin) => (
          <span key={bin.from} className="bar drift" style={{ height: `${Math.round((bin.count / most) * 100)}%` }} title={`${bin.count} with drift ${bin.from}–${bin.to}`} />
        ))}
      </span>
      <figcaption>Corrections by drift, 0 (a refinement) to 1 (a different answer)</figcaption>
    </figure>
  );
}

function Jobs({ jobs }: { jobs: Job[] }) {
  return (
    <section className="card" aria-labelledby="jobs-title">
      <h2 id="jobs-title">Fine-tuning jobs</h2>
      {jobs.length === 0 ? (
        <p>None since the server started. <code>POST /api/jobs</code> starts one: build-db, train, export, then serve the adapter.</p>
      ) : (
        <ul className="jobs">
          {jobs.map((job) => (
            <li key={job.id}>
              <strong>{job.request.name ?? job.adapter ?? job.id}</strong> — {job.status}, {job.stage}
              {job.total > 0 && (
                <>
                  <label className="progress-label" htmlFor={`job-${job.id}`}>
                    step {job.step} of {job.total}
                    {job.loss === null ? "" : `, loss ${job.loss.toFixed(3)}`}
                    {job.eta_seconds === null || job.status !== "running" ? "" : `, about ${Math.ceil(job.eta_seconds / 60)} min left`}
                  </label>
                  <progress id={`job-${job.id}`} max={job.total} value={job.step} />
                </>
              )}
              {job.error !== null && <p className="problem">{job.error}</p>}
              {job.model !== null && <p className="quiet">Served as {job.model}.</p>}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function Adapters({ overview }: { overview: LoopOverview }) {
  return (
    <section className="card wide" aria-labelledby="adapters-title">
      <h2 id="adapters-title">Adapters and their evaluations</h2>
      {overview.adapters.length === 0 ? (
        <p>No adapter under models/ yet: <code>ats-lora train</code> makes one, <code>ats-lora eval</code> measures it against its base.</p>
      ) : (
        <ul className="adapters">
          {overview.adapters.map((adapter) => (
            <li key={adapter.path}>
              <h3>
                {adapter.name} {adapter.stage !== null && <span className="badge">{adapter.stage}</span>}
              </h3>
              <p className="quiet">
                on {adapter.base ?? "an unknown base"}, made {new Date(adapter.created_at).toLocaleString()}
                {adapter.exports.length > 0 ? `, exported as ${adapter.exports.join(", ")}` : ""}
              </p>
              {adapter.evals.length === 0 ? <p>Not evaluated yet.</p> : adapter.evals.map((run) => <EvalVerdict key={run.run} run={run} />)}
            </li>
          ))}
        </ul>
      )}
      {overview.other_evals.length > 0 && (
        <>
          <h3>Other evaluations</h3>
          {overview.other_evals.map((run) => (
            <EvalVerdict key={run.run} run={run} />
          ))}
        </>
      )}
    </section>
  );
}

function EvalVerdict({ run }: { run: LoopOverview["adapters"][number]["evals"][number] }) {
  return (
    <div className="verdict">
      <p>
        <strong>{run.run}</strong> on {run.examples} held-out examples, {new Date(run.created_at).toLocaleString()}
        {run.report_html !== null && (
          <>
            {" "}
            — <a href={run.report_html}>report</a>
          </>
        )}
      </p>
      {run.comparisons.map((comparison) => (
        <div key={`${comparison.system}:${comparison.against}`}>
          <p>
            {comparison.system} against {comparison.against}: {comparison.improved} better, {comparison.worsened} worse, {comparison.unclear} unclear
          </p>
          <ul>
            {comparison.summary.map((line) => (
              <li key={line}>{line}</li>
            ))}
          </ul>
        </div>
      ))}
    </div>
  );
}

import { buildPrompt, type AtsConfig } from "@ats-lora/core";
import type { EvalExample } from "./held-out-set.js";

// Small hand-written test examples, one or more per task, with prompts built by the shared prompt builder.

const RESUME_LENA = `Lena Hoffmann
Berlin, Germany | lena.hoffmann@example.com

SUMMARY
Data scientist with 5 years of forecasting work.

EXPERIENCE
Senior Data Scientist, Kaufhaus Online GmbH - 2022 to present
- Built a LightGBM demand-forecasting model for 40,000 SKUs, cutting WAPE from 31% to 22%.

SKILLS
Python, SQL, LightGBM, Airflow

EDUCATION
M.Sc. Statistics, Humboldt-Universität zu Berlin, 2019`;

const JOB_FORECAST = `Data Scientist - Logistics Forecasting (FreightLane, Berlin)
Must-have:
- Python and SQL
- Forecasting models in production
Nice-to-have:
- Airflow`;

const RESUME_OMAR = `Omar Haddad
Amman, Jordan | omar.haddad@example.com

EXPERIENCE
Registered Nurse, Al-Bashir Hospital - 2018 to present
- Intensive care unit, 12-bed ward.

EDUCATION
B.Sc. Nursing, University of Jordan, 2017`;

export function sampleExamples(config: AtsConfig): EvalExample[] {
  const prompt = (task: string, query: string, context: string[]) => buildPrompt({ task, query, context }, config.prompts);
  const rows: Array<Omit<EvalExample, "line">> = [
    {
      task: "resume_parse",
      prompt: prompt("resume_parse", "Parse this resume into the ATS JSON schema.", [RESUME_LENA]),
      completion: JSON.stringify({ name: "Lena Hoffmann", email: "lena.hoffmann@example.com", skills: ["Python", "SQL", "LightGBM", "Airflow"] }),
    },
    {
      task: "resume_parse",
      prompt: prompt("resume_parse", "Parse this resume into the ATS JSON schema.", [RESUME_OMAR]),
      completion: JSON.stringify({ name: "Omar Haddad", email: "omar.haddad@example.com", skills: [] }),
    },
    {
      task: "match_score",
      prompt: prompt("match_score", "Score how well this candidate matches the job.", [JOB_FORECAST, RESUME_LENA]),
      completion: JSON.stringify({ match_score: 0.9, reasoning: "Python, SQL and production forecasting with LightGBM." }),
    },
    {
      task: "match_score",
      prompt: prompt("match_score", "Score how well this candidate matches the job.", [JOB_FORECAST, RESUME_OMAR]),
      completion: JSON.stringify({ match_score: 0.3, reasoning: "A nurse without Python, SQL or forecasting." }),
    },
    {
      task: "match_score",
      prompt: prompt("match_score", "Score this candidate for the job from 0 to 1.", [JOB_FORECAST, RESUME_LENA]),
      completion: JSON.stringify({ match_score: 0.6, reasoning: "Strong forecasting, but the second look finds gaps." }),
    },
    {
      task: "interview_question",
      prompt: prompt("interview_question", "Generate 1 interview question for this candidate.", [RESUME_LENA, JOB_FORECAST]),
      completion: "How did you cut WAPE from 31% to 22% with the LightGBM model at Kaufhaus Online?",
    },
    {
      task: "interview_question",
      prompt: prompt("interview_question", "The candidate gave a vague answer. Ask one follow-up question that probes the vague part.", [
        "Priya Raman\nToronto | priya.raman@example.com",
        "Question: Tell me about a feature you launched and its impact.",
        "Answer: I launched the challenges feature in FitTrail and we grew engagement significantly.",
      ]),
      completion: "Which engagement metric did you track after the challenges launch, and by how much did it grow?",
      metadata: { kind: "follow_up", vague_part: "we grew engagement significantly" },
    },
    {
      task: "resume_analysis",
      prompt: prompt("resume_analysis", "Analyse this resume for the Data Scientist position.", [RESUME_LENA, JOB_FORECAST]),
      completion: "Strengths: production forecasting (LightGBM, 40,000 SKUs). Gaps: no logistics domain. Fit: strong.",
    },
  ];
  return rows.map((row, i) => ({ ...row, line: i + 1 }));
}

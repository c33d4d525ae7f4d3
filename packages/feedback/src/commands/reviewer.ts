/** Who reviews when --reviewer is not given: feedback.reviewer in the config, else the login name. */
export function defaultReviewer(configured: string | null): string {
  return configured ?? process.env.USER ?? process.env.USERNAME ?? "unknown";
}

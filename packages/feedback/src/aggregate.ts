import type { Feedback } from "./schema.js";

/**
 * Several reviewers may rate one interaction. Their reviews combine as follows (README "Several reviewers"):
 * - rating: the mean of the ratings (min, max and their spread are kept, so disagreement stays visible);
 * - correct_points / incorrect_points: the union, in order of first mention, duplicates (ignoring case and
 *   surrounding space) dropped;
 * - ideal_response: the most recent review's that gives one (later reviewers refine earlier corrections).
 */
export interface AggregatedFeedback {
  reviews: number;
  reviewers: string[];
  rating: number;
  rating_min: number;
  rating_max: number;
  /** rating_max − rating_min: 0 when all reviewers agree. */
  disagreement: number;
  correct_points: string[];
  incorrect_points: string[];
  ideal_response: string | null;
}

export function aggregateFeedback(reviews: readonly Feedback[]): AggregatedFeedback | undefined {
  if (reviews.length === 0) return undefined;
  const ordered = [...reviews].sort((a, b) => a.created_at.localeCompare(b.created_at) || a.id.localeCompare(b.id));
  const ratings = ordered.map((review) => review.rating);
  const min = Math.min(...ratings);
  const max = Math.max(...ratings);
  let ideal: string | null = null;
  for (const review of ordered) if (review.ideal_response !== null) ideal = review.ideal_response;
  return {
    reviews: ordered.length,
    reviewers: unique(ordered.map((review) => review.reviewer)),
    rating: ratings.reduce((sum, rating) => sum + rating, 0) / ratings.length,
    rating_min: min,
    rating_max: max,
    disagreement: max - min,
    correct_points: unique(ordered.flatMap((review) => review.correct_points)),
    incorrect_points: unique(ordered.flatMap((review) => review.incorrect_points)),
    ideal_response: ideal,
  };
}

function unique(items: readonly string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const item of items) {
    const key = item.trim().toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(item);
  }
  return out;
}

//! Per-host verdicts: healthy, degraded, hung, unreachable — each with its evidence.

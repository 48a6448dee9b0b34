#!/usr/bin/env bash
# Fill-rate lag and burst tables of the trend estimator, before and after
# the onset path (src/trend.rs), driven with simulated samples at the
# filesystem collector's defaults (15 s interval, 1 h trend window).
#   bench/fill_lag.sh
# Prints: minutes from the onset of an abrupt fill of 1, 10 and 100 MB/s
# until, from then on, the reported rate is >= 50 % and >= 90 % of the truth
# and time to full is within ±20 %; and, for bursts that must stay quiet, the
# longest stretch with time to full under the 4 h and 24 h horizons.
set -euo pipefail
cd "$(dirname "$0")/.."
for t in lag_table_of_abrupt_fills bursts_stay_quiet; do
  CARGO_TERM_QUIET=true cargo test --lib -- --nocapture --exact "trend::tests::$t" |
    grep -v -e '^running' -e '^test result' -e '^$' -e '^test ' -e '^\.$' | sed 's/ \.\.\. ok$//; s/^test .* \.\.\. //'
  echo
done

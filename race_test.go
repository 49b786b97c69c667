//go:build race

package nfqueue_test

import "testing"

// skipIfRace skips allocation tests under the race detector, which makes
// sync.Pool drop items at random. scripts/test runs them without -race.
func skipIfRace(t *testing.T) {
	t.Helper()
	t.Skip("allocation counts are not meaningful under the race detector; run without -race")
}

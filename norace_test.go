//go:build !race

package nfqueue_test

import "testing"

func skipIfRace(*testing.T) {}

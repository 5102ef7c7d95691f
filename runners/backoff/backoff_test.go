package backoff

import (
	"testing"
	"time"
)

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Base: 100 * time.Millisecond, Max: time.Second}
	tests := []struct {
		n    int
		want time.Duration
	}{
		{0, 0}, {-1, 0}, {1, 100 * time.Millisecond}, {2, 200 * time.Millisecond},
		{4, 800 * time.Millisecond}, {5, time.Second}, {50, time.Second},
	}
	for _, tc := range tests {
		if got := b.Delay(tc.n); got != tc.want {
			t.Errorf("Delay(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
	if got := (Backoff{}).Delay(1); got != 100*time.Millisecond {
		t.Errorf("default base = %v", got)
	}
}

func TestBackoffDefaults(t *testing.T) {
	var b Backoff
	if b.StableAfter() != 5*time.Second || b.MaxDelay() != 10*time.Second {
		t.Errorf("defaults: stable %v, max %v", b.StableAfter(), b.MaxDelay())
	}
}

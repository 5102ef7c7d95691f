package reqinfo

import (
	"context"
	"testing"
)

func TestTimingFrom(t *testing.T) {
	if got := TimingFrom(context.Background()); got != nil {
		t.Errorf("TimingFrom(no timing) = %v, want nil", got)
	}
	want := &Timing{PID: 7}
	ctx := context.WithValue(WithTiming(context.Background(), want), struct{}{}, "another value")
	if got := TimingFrom(ctx); got != want {
		t.Errorf("TimingFrom = %p, want %p (the same Timing, to fill in)", got, want)
	}
}

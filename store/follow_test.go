package store_test

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestFollowLogFromAnOffset: a follower gets the stored log after its
// offset, then what is appended, until its context ends; readers of a log
// leave no consumer behind.
func TestFollowLogFromAnOffset(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)
	for _, c := range []string{"one\n", "two\n"} {
		if err := s.AppendLog(ctx, "b1", []byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	type piece struct {
		text string
		end  int64
	}
	got := make(chan piece, 10)
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- s.FollowLog(fctx, "b1", 2, func(chunk []byte, end int64) error {
			got <- piece{string(chunk), end}
			return nil
		})
	}()
	next := func(want piece) {
		t.Helper()
		select {
		case p := <-got:
			if p != want {
				t.Errorf("piece = %+v, want %+v", p, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no piece within 10 s, want %+v", want)
		}
	}
	next(piece{"e\n", 4})
	next(piece{"two\n", 8})
	if err := s.AppendLog(ctx, "b1", []byte("three\n")); err != nil {
		t.Fatal(err)
	}
	next(piece{"three\n", 14})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("FollowLog after its context ended = %v, want context.Canceled", err)
	}
	if _, err := s.LogSize(ctx, "b1"); err != nil {
		t.Fatal(err)
	}
	if _, err := readLog(ctx, s, "b1"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := s.Followers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d consumers left 10 s after the log's readers returned", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

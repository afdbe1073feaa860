package webhook

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// DefaultBodyBudget bounds the bytes of webhook bodies held at once by one
// Handler when BodyBudget is zero: room for two of the largest bodies a
// host sends, and many ordinary ones.
const DefaultBodyBudget = 64 << 20

// largeBody is the size above which a body's memory is handed back to the
// operating system soon after it is done: Go keeps freed heap for reuse,
// and a flood of large unsigned bodies would otherwise leave the process
// holding gigabytes it no longer uses.
const largeBody = 1 << 20

// retryAfter is what a webhook turned away for want of memory is told; the
// hosts retry failed deliveries anyway, and an operator can redeliver.
const retryAfter = "5"

// errBusy says the body budget is spent: too many large bodies are being
// read at once.
var errBusy = errors.New("too many large webhook bodies at once")

// errTooBig says a body is larger than its host ever sends.
type errTooBig struct{ limit int64 }

func (e errTooBig) Error() string { return fmt.Sprintf("body larger than %d bytes", e.limit) }

// bodies hands out the budget of body bytes and gives memory back after
// large bodies.
type bodies struct {
	once    sync.Once
	sem     *semaphore.Weighted
	freeing atomic.Bool
}

func (b *bodies) init(budget int64) {
	b.once.Do(func() {
		if budget <= 0 {
			budget = DefaultBodyBudget
		}
		b.sem = semaphore.NewWeighted(budget)
	})
}

// read reads a request's body, holding its share of the budget while it
// does. It never waits for budget: a full budget answers errBusy at once,
// so a flood cannot queue up connections behind it. The body is read into
// a buffer of exactly its declared length, so no growth doubles it;
// release must be called when the body is no longer used.
func (b *bodies) read(w http.ResponseWriter, r *http.Request, limit int64) (body []byte, release func(), err error) {
	if r.ContentLength > limit {
		return nil, nil, errTooBig{limit}
	}
	// A body of unknown length may be as large as the host's limit.
	need := limit
	if r.ContentLength >= 0 {
		need = r.ContentLength
	}
	if !b.sem.TryAcquire(need) {
		return nil, nil, errBusy
	}
	release = func() {
		b.sem.Release(need)
		if need > largeBody {
			b.freeSoon()
		}
	}
	body, err = readLimited(w, r, limit)
	if err != nil {
		release()
		return nil, nil, err
	}
	return body, release, nil
}

func readLimited(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	rd := http.MaxBytesReader(w, r.Body, limit)
	if r.ContentLength < 0 {
		body, err := io.ReadAll(rd)
		return body, readErr(err, limit)
	}
	body := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(rd, body); err != nil {
		return nil, readErr(err, limit)
	}
	return body, nil
}

func readErr(err error, limit int64) error {
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tooBig):
		return errTooBig{limit}
	default:
		return fmt.Errorf("read body: %w", err)
	}
}

// freeSoon returns freed heap to the operating system a moment after a
// large body is done: one pass covers every body of a burst.
func (b *bodies) freeSoon() {
	if !b.freeing.CompareAndSwap(false, true) {
		return
	}
	time.AfterFunc(time.Second, func() {
		b.freeing.Store(false)
		debug.FreeOSMemory()
	})
}

package main

import (
	"net/http"
	"strings"
	"time"
)

// writeDeadlines gives every answer but a build log d to be written. A log
// may be streamed for as long as its build runs, so it has neither a write
// deadline nor the server's read deadline, which would cancel its request.
func writeDeadlines(next http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/log") {
			_ = rc.SetReadDeadline(time.Time{})
		} else {
			_ = rc.SetWriteDeadline(time.Now().Add(d))
		}
		next.ServeHTTP(w, r)
	})
}

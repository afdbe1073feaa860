package deploy

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzSignVerify signs arbitrary messages and checks them as a receiver
// would: a signed message verifies, the same message with one byte of its
// body flipped does not, and arbitrary signature headers never panic the
// verifier nor pass it.
func FuzzSignVerify(f *testing.F) {
	f.Add([]byte(`{"type":"build.succeeded"}`), "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", int64(1700000000), uint(3), "v1,AAAA v1a,xyz")
	f.Add([]byte{}, "a", int64(0), uint(0), "")
	f.Add([]byte("\x00\xff"), "id-with-dashes", int64(-1), uint(1<<40), "v1,"+string(make([]byte, 100)))
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	f.Fuzz(func(t *testing.T, body []byte, msgID string, unix int64, flip uint, junkSig string) {
		ts := time.Unix(unix, 0)
		sig, err := Sign(secret, msgID, ts, body)
		if err != nil {
			return // ids with '.' or empty are refused by design
		}
		h := http.Header{}
		h.Set(HeaderID, msgID)
		h.Set(HeaderTimestamp, strconv.FormatInt(unix, 10))
		h.Set(HeaderSignature, sig)
		if err := Verify(secret, h, body, time.Minute, ts); err != nil {
			t.Fatalf("Verify(Sign(x)): %v", err)
		}
		flipped := append([]byte(nil), body...)
		if len(flipped) == 0 {
			flipped = []byte{0}
		} else {
			flipped[int(flip%uint(len(flipped)))] ^= 0xff
		}
		if err := Verify(secret, h, flipped, time.Minute, ts); err == nil {
			t.Fatalf("Verify passed a body with a flipped byte")
		}
		h.Set(HeaderSignature, junkSig)
		if err := Verify(secret, h, body, time.Minute, ts); err == nil && !slices.Contains(strings.Fields(junkSig), sig) {
			t.Fatalf("Verify passed junk signature %q", junkSig)
		}
	})
}

package source

import (
	"reflect"
	"testing"

	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

func TestHTTPSAuth(t *testing.T) {
	tests := []struct {
		name string
		c    Credentials
		want *githttp.BasicAuth // nil: anonymous
	}{
		{"bare token as the host's user", Credentials{Token: "ghs_abc", TokenUser: "x-access-token"}, &githttp.BasicAuth{Username: "x-access-token", Password: "ghs_abc"}},
		{"user:password as given", Credentials{Token: "jdoe:app-pass", TokenUser: "x-token-auth"}, &githttp.BasicAuth{Username: "jdoe", Password: "app-pass"}},
		{"no token", Credentials{TokenUser: "oauth2"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.c.Auth("https://git.example/acme/demo.git", t.TempDir())
			if err != nil {
				t.Fatalf("Auth: %v", err)
			}
			if tt.want == nil && got != nil {
				t.Fatalf("Auth = %v, want anonymous", got)
			}
			if tt.want != nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Auth = %#v, want %#v", got, tt.want)
			}
		})
	}
}

// A bare token without the host's user name is refused rather than sent as
// a guessed user that the host answers with a puzzling 401.
func TestBareTokenNeedsTokenUser(t *testing.T) {
	if _, err := (Credentials{Token: "glpat-abc"}).Auth("https://git.example/acme/demo.git", t.TempDir()); err == nil {
		t.Fatal("Auth without TokenUser: no error")
	}
}

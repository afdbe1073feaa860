package registry

import (
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
)

// PlaceholderRealm is the token realm a registry behind a Front announces;
// the Front puts the client's own address in its place.
const PlaceholderRealm = "http://slipway-realm.invalid/v2/token"

// Front serves a registry and its token service on one address, for the
// registry role. A registry's realm is one fixed URL, but its clients reach
// it under different names (registry:5000 inside Compose or a cluster,
// localhost:5000 or an Ingress host outside): Front rewrites the realm of
// every challenge to the scheme and host the client used, so that whoever
// reached the registry reaches its token service too.
type Front struct {
	// Upstream is the registry's own address on loopback (host:port).
	Upstream string
	// Tokens answers /v2/token.
	Tokens http.Handler
}

// Handler returns the front's HTTP handler.
func (f Front) Handler() http.Handler {
	target := &url.URL{Scheme: "http", Host: f.Upstream}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			// The registry writes upload locations from the host and
			// scheme the client used.
			pr.Out.Host = pr.In.Host
			pr.Out.Header.Set("X-Forwarded-Proto", scheme(pr.In))
			pr.Out.Header.Set("X-Forwarded-Host", host(pr.In))
		},
		ModifyResponse: func(resp *http.Response) error {
			if resp.StatusCode == http.StatusUnauthorized {
				realm := scheme(resp.Request) + "://" + host(resp.Request) + "/v2/token"
				challenges := resp.Header.Values("WWW-Authenticate")
				resp.Header.Del("WWW-Authenticate")
				for _, c := range challenges {
					resp.Header.Add("WWW-Authenticate", strings.ReplaceAll(c, PlaceholderRealm, realm))
				}
			}
			return nil
		},
	}
	mux := http.NewServeMux()
	// POST is the OAuth2 form newer clients (BuildKit, docker login) try
	// first.
	mux.Handle("GET /v2/token", f.Tokens)
	mux.Handle("POST /v2/token", f.Tokens)
	mux.Handle("/", proxy)
	return mux
}

// scheme is how the client reached the front: a proxy before it (an
// Ingress ending TLS) says so in X-Forwarded-Proto.
func scheme(r *http.Request) string {
	if p := r.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
		return p
	}
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// host is the name the client used, or the one a proxy before the front
// received.
func host(r *http.Request) string {
	if h := r.Header.Get("X-Forwarded-Host"); h != "" && !strings.ContainsAny(h, "/ ,") {
		return h
	}
	return r.Host
}

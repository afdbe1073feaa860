package api

import (
	_ "embed"
	"net/http"
)

// openapiJSON is the OpenAPI 3.1 document of every route Register adds,
// with /metrics that cmd/slipway serves beside them. TestOpenAPI keeps it
// true: a route missing from it, or an answer it does not describe, fails.
//
//go:embed openapi.json
var openapiJSON []byte

// OpenAPI returns the OpenAPI 3.1 document of the API.
func OpenAPI() []byte { return append([]byte(nil), openapiJSON...) }

// serveOpenAPI answers the document to anyone: it describes the API, and
// holds nothing of any organization.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openapiJSON)
}

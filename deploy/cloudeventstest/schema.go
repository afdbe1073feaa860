// Package cloudeventstest checks CloudEvents bodies against the CloudEvents
// 1.0 JSON schema the CloudEvents project publishes, for the tests of the
// deploy hooks (unit and end-to-end). testdata/cloudevents.schema.md says
// where the schema comes from.
package cloudeventstest

import (
	"bytes"
	_ "embed" // the schema travels with the package, wherever tests run
	"fmt"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed testdata/cloudevents.schema.json
var schemaJSON []byte

// schemaURL only names the schema inside the compiler; nothing is fetched.
const schemaURL = "file:///cloudevents.schema.json"

// Validate checks body against the CloudEvents 1.0 JSON schema, with the
// formats it names (uri-reference for source, date-time for time)
// asserted, and the two attributes the project's newer copy of the schema
// also requires non-empty when present.
func Validate(body []byte) error {
	schema, err := compile()
	if err != nil {
		return err
	}
	event, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("decode event: %w", err)
	}
	if err := schema.Validate(event); err != nil {
		return fmt.Errorf("event against the CloudEvents schema: %w", err)
	}
	attrs, ok := event.(map[string]any)
	if !ok {
		return fmt.Errorf("event is %T, want a JSON object", event)
	}
	for _, name := range []string{"datacontenttype", "time"} {
		if v, set := attrs[name]; set && v == "" {
			return fmt.Errorf("event attribute %s is empty", name)
		}
	}
	return nil
}

func compile() (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
	if err != nil {
		return nil, fmt.Errorf("decode the CloudEvents schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, fmt.Errorf("load the CloudEvents schema: %w", err)
	}
	schema, err := c.Compile(schemaURL)
	if err != nil {
		return nil, fmt.Errorf("compile the CloudEvents schema: %w", err)
	}
	return schema, nil
}

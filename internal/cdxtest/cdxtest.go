// Package cdxtest checks CycloneDX BOMs in tests: against the official
// CycloneDX 1.6 JSON schema as shipped in the npm package
// @cyclonedx/cyclonedx-library (installed by npm ci in mcp/testdata/node),
// and by a round trip through github.com/CycloneDX/cyclonedx-go.
package cdxtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// SchemaURL is the $id of the CycloneDX 1.6 JSON schema.
const SchemaURL = "http://cyclonedx.org/schema/bom-1.6.schema.json"

// schemaFiles maps the URLs the 1.6 schema is known by, or refers to, to
// the files of the npm package, so no schema is fetched from the network.
var schemaFiles = map[string]string{
	SchemaURL: "bom-1.6.SNAPSHOT.schema.json",
	"http://cyclonedx.org/schema/spdx.SNAPSHOT.schema.json":     "spdx.SNAPSHOT.schema.json",
	"http://cyclonedx.org/schema/jsf-0.82.SNAPSHOT.schema.json": "jsf-0.82.SNAPSHOT.schema.json",
}

// SchemaDir returns the directory of the schema files under the
// node_modules directory mods.
func SchemaDir(mods string) string {
	return filepath.Join(mods, "@cyclonedx", "cyclonedx-library", "res", "schema")
}

type refuseLoader struct{}

func (refuseLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("cdxtest: %s is not a local schema file", url)
}

// Compile compiles the CycloneDX 1.6 schema from the files in dir (see
// SchemaDir), with format assertions on.
func Compile(dir string) (*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	c.UseLoader(refuseLoader{})
	for url, name := range schemaFiles {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("cdxtest: %s: %w", name, err)
		}
		if err := c.AddResource(url, doc); err != nil {
			return nil, err
		}
	}
	return c.Compile(SchemaURL)
}

const notInstalled = "the CycloneDX schema is not installed: run npm ci --prefix mcp/testdata/node"

// Schema returns the compiled CycloneDX 1.6 schema from the node_modules
// directory mods. When the package is not installed it skips t, or, with
// AGENTGUARD_REQUIRE_EXTERNAL=1, fails it.
func Schema(t testing.TB, mods string) *jsonschema.Schema {
	t.Helper()
	sch := schemaOrNil(t, mods)
	if sch == nil {
		t.Skip(notInstalled)
	}
	return sch
}

// ValidateIfInstalled validates doc against the schema from mods like
// Validate. When the package is not installed it only logs so, and the
// rest of the test goes on — unless AGENTGUARD_REQUIRE_EXTERNAL=1, when it
// fails t.
func ValidateIfInstalled(t testing.TB, mods string, doc []byte) {
	t.Helper()
	if sch := schemaOrNil(t, mods); sch != nil {
		Validate(t, sch, doc)
		return
	}
	t.Log(notInstalled + "; the BOM was not checked against it")
}

func schemaOrNil(t testing.TB, mods string) *jsonschema.Schema {
	t.Helper()
	dir := SchemaDir(mods)
	if _, err := os.Stat(filepath.Join(dir, schemaFiles[SchemaURL])); err != nil {
		if os.Getenv("AGENTGUARD_REQUIRE_EXTERNAL") == "1" {
			t.Fatal(notInstalled)
		}
		return nil
	}
	sch, err := Compile(dir)
	if err != nil {
		t.Fatalf("compiling the CycloneDX 1.6 schema: %v", err)
	}
	return sch
}

// Validate fails t unless doc is valid under the schema.
func Validate(t testing.TB, sch *jsonschema.Schema, doc []byte) {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("BOM is not JSON: %v", err)
	}
	if err := sch.Validate(v); err != nil {
		t.Fatalf("BOM does not validate against the CycloneDX 1.6 schema: %v", err)
	}
}

// RoundTrip decodes doc with cyclonedx-go, encodes it again as 1.6 JSON and
// fails t unless the two are the same JSON value. It returns the decoded
// BOM.
func RoundTrip(t testing.TB, doc []byte) *cdx.BOM {
	t.Helper()
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(doc), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatalf("cyclonedx-go cannot decode the BOM: %v", err)
	}
	var out bytes.Buffer
	if err := cdx.NewBOMEncoder(&out, cdx.BOMFileFormatJSON).EncodeVersion(&bom, cdx.SpecVersion1_6); err != nil {
		t.Fatalf("cyclonedx-go cannot encode the BOM: %v", err)
	}
	var a, b any
	if err := json.Unmarshal(doc, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out.Bytes(), &b); err != nil {
		t.Fatal(err)
	}
	aj, _ := json.Marshal(a)
	bj, _ := json.Marshal(b)
	if !bytes.Equal(aj, bj) {
		t.Fatalf("the BOM changes in a round trip through cyclonedx-go:\nbefore: %s\nafter:  %s", aj, bj)
	}
	return &bom
}

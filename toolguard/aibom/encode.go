package aibom

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	cdx "github.com/CycloneDX/cyclonedx-go"
)

// Encode writes bom to w as CycloneDX 1.6 JSON, indented.
func Encode(w io.Writer, bom *cdx.BOM) error {
	enc := cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	if err := enc.EncodeVersion(bom, cdx.SpecVersion1_6); err != nil {
		return fmt.Errorf("aibom: encode: %w", err)
	}
	return nil
}

// WriteFile writes bom to path as CycloneDX 1.6 JSON, atomically: a reader
// sees the old file or the whole new one, never a part. The file has mode
// 0600.
func WriteFile(path string, bom *cdx.BOM) error {
	var buf bytes.Buffer
	if err := Encode(&buf, bom); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".aibom-*")
	if err != nil {
		return fmt.Errorf("aibom: %w", err)
	}
	_, werr := f.Write(buf.Bytes())
	if werr == nil {
		werr = f.Sync()
	}
	if err := errors.Join(werr, f.Close()); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("aibom: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("aibom: %w", err)
	}
	return nil
}

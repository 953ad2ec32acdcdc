package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Encode writes r as indented JSON.
func Encode(w io.Writer, r *Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Save writes r to path as JSON, through a temporary file renamed into place so that a
// reader never sees half a result.
func Save(path string, r *Result) error {
	var buf bytes.Buffer
	if err := Encode(&buf, r); err != nil {
		return fmt.Errorf("result file %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("result file %s: %w", path, err)
	}
	_, werr := tmp.Write(buf.Bytes())
	// CreateTemp makes the file private; a result is an ordinary file (a CI artifact).
	merr := tmp.Chmod(0o644)
	cerr := tmp.Close()
	if err := errors.Join(werr, merr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("result file %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("result file %s: %w", path, err)
	}
	return nil
}

// Load reads a result file. Every error is one line naming the file: it does not exist,
// is not JSON (with line and column), is not an sseharness result, or has a schema
// version this harness does not read.
func Load(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("result file %s does not exist", path)
	}
	if err != nil {
		return nil, fmt.Errorf("result file %s: %w", path, err)
	}
	r, err := decode(b)
	if err != nil {
		return nil, fmt.Errorf("result file %s %w", path, err)
	}
	return r, nil
}

// Decode reads a result from JSON; errors as for Load.
func Decode(rd io.Reader) (*Result, error) {
	b, err := io.ReadAll(rd)
	if err != nil {
		return nil, err
	}
	r, err := decode(b)
	if err != nil {
		return nil, fmt.Errorf("result %w", err)
	}
	return r, nil
}

// decode's errors read after "result file NAME".
func decode(b []byte) (*Result, error) {
	var head struct {
		SchemaVersion *int `json:"schema_version"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, jsonError(b, err)
	}
	switch {
	case head.SchemaVersion == nil:
		return nil, errors.New("has no schema_version: it is not an sseharness result")
	case *head.SchemaVersion != SchemaVersion:
		return nil, fmt.Errorf("has schema_version %d; this harness reads version %d", *head.SchemaVersion, SchemaVersion)
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, jsonError(b, err)
	}
	return &r, nil
}

// jsonError turns a decoding error into "is not valid JSON: line L, column C: ...".
func jsonError(b []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		line, col := position(b, syn.Offset-1) // Offset is just past the offending byte
		return fmt.Errorf("is not valid JSON: line %d, column %d: %v", line, col, syn)
	case errors.As(err, &typ):
		line, col := position(b, typ.Offset)
		return fmt.Errorf("is malformed: line %d, column %d: field %s holds a JSON %s, want %s", line, col, typ.Field, typ.Value, typ.Type)
	case errors.Is(err, io.ErrUnexpectedEOF) || err.Error() == "unexpected end of JSON input":
		return errors.New("is not valid JSON: it ends too early (truncated?)")
	}
	return fmt.Errorf("is malformed: %v", err)
}

// position converts a byte offset into a 1-based line and column.
func position(b []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(b)))
	line, col = 1, 1
	for _, c := range b[:off] {
		if c == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

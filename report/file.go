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

// DefaultMaxFileSize is the largest result file Load reads: far above any real result
// (histograms keep a file's size independent of the event count), small enough that a
// wrong file given by mistake is refused before it is read into memory.
const DefaultMaxFileSize int64 = 64 << 20

// FileTooLargeError is returned for a result file over the size limit. Size is -1 when
// the file is not a regular file and was found too large while reading it.
type FileTooLargeError struct {
	Path        string
	Size, Limit int64
}

func (e *FileTooLargeError) Error() string {
	if e.Size < 0 {
		return fmt.Sprintf("result file %s is larger than the limit of %s", e.Path, fmtBytes(float64(e.Limit)))
	}
	return fmt.Sprintf("result file %s is %s, larger than the limit of %s", e.Path, fmtBytes(float64(e.Size)), fmtBytes(float64(e.Limit)))
}

// Load reads a result file of at most DefaultMaxFileSize bytes; see LoadMax.
func Load(path string) (*Result, error) { return LoadMax(path, DefaultMaxFileSize) }

// LoadMax reads a result file of at most maxBytes bytes. A larger file is refused with a
// *FileTooLargeError before it is read. Every error is one line naming the file: it does
// not exist, is too large, is not JSON (with line and column), is not an sseharness
// result, has a schema version this harness does not read, or holds a value this harness
// does not know (the field named, as Validate does).
func LoadMax(path string, maxBytes int64) (*Result, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("result file %s does not exist", path)
	}
	if err != nil {
		return nil, fmt.Errorf("result file %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("result file %s: %w", path, err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("result file %s is a directory", path)
	}
	if st.Mode().IsRegular() && st.Size() > maxBytes {
		return nil, &FileTooLargeError{Path: path, Size: st.Size(), Limit: maxBytes}
	}
	// The limit holds also for a file that grows, a pipe or a device.
	b, err := io.ReadAll(io.LimitReader(f, maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("result file %s: %w", path, err)
	}
	if int64(len(b)) > maxBytes {
		return nil, &FileTooLargeError{Path: path, Size: -1, Limit: maxBytes}
	}
	r, err := decode(b)
	if err != nil {
		return nil, fmt.Errorf("result file %s %w", path, err)
	}
	return r, nil
}

// Decode reads a result from JSON of at most DefaultMaxFileSize bytes; errors as for
// Load.
func Decode(rd io.Reader) (*Result, error) {
	b, err := io.ReadAll(io.LimitReader(rd, DefaultMaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > DefaultMaxFileSize {
		return nil, fmt.Errorf("result is larger than the limit of %s", fmtBytes(float64(DefaultMaxFileSize)))
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
	case *head.SchemaVersion < oldestSchemaVersion || *head.SchemaVersion > SchemaVersion:
		return nil, fmt.Errorf("has schema_version %d; this harness reads versions %d to %d", *head.SchemaVersion, oldestSchemaVersion, SchemaVersion)
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, jsonError(b, err)
	}
	if err := requiredFields(b); err != nil {
		return nil, fmt.Errorf("is invalid: %w", err)
	}
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("is invalid: %w", err)
	}
	r.SchemaVersion = SchemaVersion // an older file's histograms are converted as they load
	return &r, nil
}

// requiredFields reports the objects a file written by this harness always has and that
// decoding alone cannot tell from zeros: a scenario without "metrics" would read as one
// with no errors and no lost ids, a gate passing on no evidence.
func requiredFields(b []byte) error {
	var doc struct {
		Scenarios []struct {
			Metrics json.RawMessage `json:"metrics"`
		} `json:"scenarios"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return err
	}
	var p problems
	for i, s := range doc.Scenarios {
		if len(s.Metrics) == 0 || string(s.Metrics) == "null" {
			p.add("scenarios[%d].metrics: missing", i)
		}
	}
	return p.err()
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

package webui

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/provbox/provbox/appliance"
)

// errorBody is the JSON shape of every error answer: the first (or only)
// error, and, when the input broke several rules at once, all of them in
// Errors.
type errorBody struct {
	Error  string       `json:"error"`
	Field  string       `json:"field,omitempty"`
	Line   int          `json:"line,omitempty"`
	Errors []fieldError `json:"errors,omitempty"`
}

// fieldError is one of several errors of an answer.
type fieldError struct {
	Field string `json:"field,omitempty"`
	Error string `json:"error"`
	Line  int    `json:"line,omitempty"`
}

// writeJSON answers v as JSON with the given status.
func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		s.logger().Debug("write response", "err", err)
	}
}

// retryAfter is a Retry-After value in whole seconds, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(max(1, int((d+time.Second-1)/time.Second)))
}

// readJSON decodes the request body, limited to MaxBody, into v: one JSON
// value, no unknown fields, nothing after it. Errors name the field where
// the decoder tells which.
func (s *Server) readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body := http.MaxBytesReader(w, r.Body, s.MaxBody)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return fmt.Errorf("read body: %w", err)
		}
		return appliance.Errorf(appliance.EINVALID, "body", "unexpected data after the JSON value")
	}
	return nil
}

func jsonError(err error) error {
	var (
		tooLarge  *http.MaxBytesError
		syntax    *json.SyntaxError
		wrongType *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooLarge):
		return fmt.Errorf("read body: %w", err)
	case errors.Is(err, io.EOF):
		return appliance.Errorf(appliance.EINVALID, "body", "empty; expected a JSON value")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return appliance.Errorf(appliance.EINVALID, "body", "JSON ends too early")
	case errors.As(err, &syntax):
		return appliance.Errorf(appliance.EINVALID, "body", "invalid JSON at byte %d: %s", syntax.Offset, strings.TrimPrefix(syntax.Error(), "json: "))
	case errors.As(err, &wrongType):
		field := wrongType.Field
		if field == "" {
			field = "body"
		}
		return appliance.Errorf(appliance.EINVALID, field, "must be %s, not a JSON %s", jsonKind(wrongType.Type.String()), wrongType.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no typed error for this one.
		name := strings.TrimPrefix(err.Error(), "json: unknown field ")
		if u, uerr := strconv.Unquote(name); uerr == nil {
			name = u
		}
		return appliance.Errorf(appliance.EINVALID, appliance.Clip(name), "unknown field")
	default:
		return appliance.Errorf(appliance.EINVALID, "body", "cannot read JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
}

// jsonKind names a Go type the way a JSON client thinks of it.
func jsonKind(goType string) string {
	goType = strings.TrimLeft(goType, "*")
	switch {
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "true or false"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "an integer"
	case strings.HasPrefix(goType, "float"):
		return "a number"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	default:
		return "an object"
	}
}

// pathID parses the {id} of a path.
func pathID(r *http.Request) (int64, error) {
	raw := r.PathValue("id")
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		return 0, appliance.Errorf(appliance.EINVALID, "id", "%q is not an id (a positive integer)", raw)
	}
	return id, nil
}

// pathMAC parses the {mac} of a path, in any notation ParseMAC accepts.
func pathMAC(r *http.Request) (string, error) {
	return appliance.ParseMAC(r.PathValue("mac"))
}

// queryBool parses an optional boolean query parameter; absent is false
// with set == false.
func queryBool(r *http.Request, name string) (value, set bool, err error) {
	raw := r.URL.Query().Get(name)
	if raw == "" {
		return false, false, nil
	}
	b, perr := strconv.ParseBool(raw)
	if perr != nil {
		return false, false, appliance.Errorf(appliance.EINVALID, name, "%q is not true or false", raw)
	}
	return b, true, nil
}

// queryInt parses an optional non-negative integer query parameter (def
// when absent), at most max.
func queryInt(r *http.Request, name string, def, max int) (int, error) {
	raw := r.URL.Query().Get(name)
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 0 || n > max {
		return 0, appliance.Errorf(appliance.EINVALID, name, "%q is not a whole number from 0 to %d", raw, max)
	}
	return n, nil
}

// nonNil makes list answers "[]" rather than "null".
func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}

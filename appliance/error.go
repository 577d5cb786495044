package appliance

import (
	"errors"
	"fmt"
)

// Error codes. Every package maps them at its edge: webui to HTTP statuses,
// tftpd to TFTP errors, sip to SIP response codes, the CLI to exit codes.
const (
	EINVALID      = "invalid"      // the input breaks a rule; Field names the input
	ENOTFOUND     = "not_found"    // the addressed thing does not exist
	ECONFLICT     = "conflict"     // duplicate, or still in use by something else
	EUNAUTHORIZED = "unauthorized" // missing or wrong credentials
	ETOOMANY      = "too_many"     // the requester is refused for a while (rate limit)
	EFORBIDDEN    = "forbidden"    // authenticated, but the request may not be made (CSRF)
	EUNAVAILABLE  = "unavailable"  // the store cannot take writes now (disk full, read-only); reads go on
	EINTERNAL     = "internal"     // a bug or an I/O failure; details are logged, not shown
)

// Error is the one error type of the domain. Field names the input that broke
// a rule ("mac", "model", "keys[2].position"); Line is set for CSV rows.
type Error struct {
	Code    string
	Field   string
	Line    int
	Message string
}

func (e *Error) Error() string {
	msg := e.Message
	if e.Field != "" {
		msg = e.Field + ": " + msg
	}
	if e.Line > 0 {
		msg = fmt.Sprintf("line %d: %s", e.Line, msg)
	}
	return msg
}

// Errorf returns an *Error with the given code and field.
func Errorf(code, field, format string, args ...any) *Error {
	return &Error{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of an *Error in err's chain, or EINTERNAL for
// any other non-nil error.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorField returns the field of an *Error in err's chain, if any.
func ErrorField(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}

// ErrorMessage returns the user-facing text of err: the full message of an
// *Error, and "internal error" for anything else so that internals (paths,
// SQL, secrets) never reach a client.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Error()
	}
	return "internal error"
}

// ErrorLine returns the CSV line of an *Error in err's chain, if any.
func ErrorLine(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Line
	}
	return 0
}

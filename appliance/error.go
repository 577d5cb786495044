package appliance

import (
	"errors"
	"fmt"
	"strings"
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

// Errorf returns an *Error with the given code and field. A string quoted
// with %q is input the user gave: it is cut to MaxQuoted characters, so a
// 12 MB "column name" does not come back in the answer (SPEC §9).
func Errorf(code, field, format string, args ...any) *Error {
	clipQuoted(format, args)
	return &Error{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// MaxQuoted is how many characters of an input an error message quotes.
const MaxQuoted = 100

// Clip cuts s to MaxQuoted characters, marking the cut with "…".
func Clip(s string) string {
	n := 0
	for i := range s {
		if n == MaxQuoted {
			return s[:i] + "…"
		}
		n++
	}
	return s
}

// clipQuoted clips, in place, the string arguments that format quotes
// with %q (verbs are matched to arguments in order; explicit argument
// indexes are not used in this code base).
func clipQuoted(format string, args []any) {
	arg := 0
	for i := 0; i < len(format) && arg < len(args); i++ {
		if format[i] != '%' {
			continue
		}
		i++
		for i < len(format) && strings.IndexByte("+-# 0123456789.*", format[i]) >= 0 {
			if format[i] == '*' {
				arg++
			}
			i++
		}
		if i >= len(format) || format[i] == '%' {
			continue
		}
		if format[i] == 'q' {
			if s, ok := args[arg].(string); ok && len(s) > MaxQuoted {
				args[arg] = Clip(s)
			}
		}
		arg++
	}
}

// Errors is every rule a form's input broke, in the order of its fields,
// so that a form can mark them all at once instead of one per submit. It
// unwraps to its *Errors: errors.As finds the first, so ErrorCode,
// ErrorField and ErrorMessage describe the first, and AllErrors lists them.
type Errors []*Error

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

// Unwrap lets errors.As and errors.Is look at each error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Add appends err (an *Error, or Errors) to es and reports whether err
// was one of them; nil adds nothing. Any other error is not added: the
// caller returns it as it is.
func (es *Errors) Add(err error) bool {
	var list Errors
	var e *Error
	switch {
	case err == nil:
		return true
	case errors.As(err, &list):
		*es = append(*es, list...)
	case errors.As(err, &e):
		*es = append(*es, e)
	default:
		return false
	}
	return true
}

// Err is es as an error: nil when empty, the *Error itself when it holds
// one, else es.
func (es Errors) Err() error {
	switch len(es) {
	case 0:
		return nil
	case 1:
		return es[0]
	}
	return es
}

// AllErrors returns every *Error of err: the list of an Errors, or the one
// *Error in its chain; nil for any other error.
func AllErrors(err error) []*Error {
	var list Errors
	if errors.As(err, &list) {
		return list
	}
	var e *Error
	if errors.As(err, &e) {
		return []*Error{e}
	}
	return nil
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

// Count says n things in words, singular or plural: "1 phone", "3 phones".
func Count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

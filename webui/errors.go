package webui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/provbox/provbox/appliance"
)

// codes maps the domain's error codes to HTTP statuses: the one table of
// webui, for the API and the admin pages alike (model: benbjohnson/wtf
// http/http.go). A code not in it is an internal error: 500.
var codes = map[string]int{
	appliance.EINVALID:      http.StatusBadRequest,
	appliance.EUNAUTHORIZED: http.StatusUnauthorized,
	appliance.EFORBIDDEN:    http.StatusForbidden,
	appliance.ENOTFOUND:     http.StatusNotFound,
	appliance.ECONFLICT:     http.StatusConflict,
	appliance.ETOOMANY:      http.StatusTooManyRequests,
	appliance.EUNAVAILABLE:  http.StatusInsufficientStorage,
}

// statusFor is the HTTP status of err: its code's, 413 for a request body
// over the limit, 500 for anything else.
func statusFor(err error) int {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return http.StatusRequestEntityTooLarge
	}
	if status, ok := codes[appliance.ErrorCode(err)]; ok {
		return status
	}
	return http.StatusInternalServerError
}

// isAPI reports whether r is a JSON API request (everything under /api/);
// the rest are the admin pages, which answer in HTML.
func isAPI(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/api/") }

// fail answers err with the status statusFor gives it: JSON for the API
// ({"error", "field", "line", "errors"}), an HTML page for the admin pages.
// An internal error is logged with its details and shown only as
// "internal error".
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := statusFor(err)
	switch status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Basic realm="provbox"`)
	case http.StatusTooManyRequests:
		w.Header().Set("Retry-After", retryAfter(s.Guard.Wait(appliance.ProtoHTTP, remoteIP(r))))
	case http.StatusInternalServerError:
		s.logger().Error("http request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if isAPI(r) {
		s.writeJSON(w, status, errorBodyOf(err, status))
		return
	}
	s.errorPage(w, r, status, err)
}

// errorBodyOf is the JSON body of an error answer.
func errorBodyOf(err error, status int) errorBody {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return errorBody{Error: fmt.Sprintf("body: too large (at most %d bytes)", tooLarge.Limit), Field: "body"}
	case status == http.StatusInternalServerError:
		return errorBody{Error: "internal error"}
	}
	body := errorBody{
		Error: appliance.ErrorMessage(err),
		Field: appliance.ErrorField(err),
		Line:  appliance.ErrorLine(err),
	}
	if all := appliance.AllErrors(err); len(all) > 1 {
		for _, e := range all {
			body.Errors = append(body.Errors, fieldError{Field: e.Field, Error: e.Error(), Line: e.Line})
		}
	}
	return body
}

// errorData is what the error page shows.
type errorData struct {
	Status  int
	Message string
}

// errorPage renders an admin page's error: its status, what went wrong in
// the admin's words, and a way back.
func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, status int, err error) {
	title, msg := http.StatusText(status), errorBodyOf(err, status).Error // as the API says it: "page: …"
	switch status {
	case http.StatusNotFound:
		title = "Not found"
	case http.StatusForbidden:
		title = "Refused"
	case http.StatusInsufficientStorage:
		title = "Cannot save now"
	case http.StatusInternalServerError:
		title, msg = "Something went wrong", "provbox could not do this because of an error on its side; its log says more."
	}
	s.render(w, r, status, "error.html", &page{Title: title, Data: &errorData{Status: status, Message: msg}})
}

// notFound is the error of an admin page's path that names nothing, also
// for an id or MAC that is not well formed.
func notFound(r *http.Request) error {
	return appliance.Errorf(appliance.ENOTFOUND, "", "%s: no such page", appliance.Clip(r.URL.Path))
}

// lookup finds the thing a path names: key parses it from the path
// (pathID, pathMAC), find looks it up. The API answers a malformed key 400
// and an unknown one 404; the pages answer both 404. Any other error is
// answered by fail. ok is false when lookup has answered.
func lookup[K, T any](s *Server, w http.ResponseWriter, r *http.Request, key func(*http.Request) (K, error), find func(context.Context, K) (T, error)) (v T, ok bool) {
	k, err := key(r)
	if err == nil {
		if v, err = find(r.Context(), k); err == nil {
			return v, true
		}
	}
	if appliance.ErrorCode(err) == appliance.EINVALID && !isAPI(r) {
		err = notFound(r)
	}
	s.fail(w, r, err)
	return v, false
}

// formFailed readies p to show err on a page re-rendered for a failed
// form or action, and returns the status to render it with (statusFor's).
// With p.Form set (a form was typed), every field err names is marked
// and the flash counts them; without, the flash is the error's message.
// An error that is not the admin's to correct (internal) is not shown
// there: fail answers it, and ok is false.
func (s *Server) formFailed(w http.ResponseWriter, r *http.Request, p *page, err error) (status int, ok bool) {
	status = statusFor(err)
	if status == http.StatusInternalServerError {
		s.fail(w, r, err)
		return status, false
	}
	p.FlashError = true
	if p.Form == nil {
		p.Flash = flashMessage(err)
		return status, true
	}
	p.Errors, p.Flash = formErrors(err)
	return status, true
}

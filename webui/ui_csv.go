package webui

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/provbox/provbox/appliance"
)

// CSV export and import on the admin pages (the API's /api/v1/phones.csv,
// with a preview in between):
//
//	GET  /phones.csv      the phones CSV, the same bytes as the API's, as a dated download
//	GET  /phones/import   the import form: a file, or rows pasted
//	POST /phones/import   step=preview: checks the CSV (a dry run: nothing is written)
//	                      and shows per phone whether it is added or changed, and how,
//	                      the keys created, and every error with its line; without
//	                      errors, a button posts the same CSV back with
//	                      step=import, which imports it all or nothing and
//	                      redirects to /phones with what it did.
//
// The form may come as multipart/form-data (a file) or urlencoded (rows
// pasted, or the preview's import button); the CSV may have at most
// uiCSVMax bytes.

// uiCSVMax is the largest CSV the import form takes.
const uiCSVMax = 5 << 20

func (s *Server) routesCSV(mux *http.ServeMux) {
	mux.HandleFunc("GET /phones.csv", s.ui(s.handleExportCSVUI))
	mux.HandleFunc("GET /phones/import", s.ui(s.handleImportFormUI))
	mux.HandleFunc("POST /phones/import", s.csvForm(s.ui(s.handleImportUI)))
}

// csvMax is the import form's CSV limit (lower when tests lower the API's).
func (s *Server) csvMax() int64 { return min(uiCSVMax, s.csvMaxBody) }

func (s *Server) handleExportCSVUI(w http.ResponseWriter, r *http.Request) {
	s.exportPhones(w, r, "provbox-phones-"+time.Now().Format("2006-01-02")+".csv")
}

// importData is what phones_import.html shows.
type importData struct {
	Columns []string
	MaxMB   int64
	CSV     string // the CSV sent, for the import button
	Text    string // what the text area shows: the CSV sent when it is to be corrected
	Checked bool   // a preview was made
	Rows    int    // lines of CSV text, for the text area's height
	// Errors are every error of the CSV, by line; none once Checked means
	// it can be imported.
	Errors  []*appliance.Error
	Phones  []appliance.PhoneChange
	NewKeys []appliance.ImportKey
	Added   int
	Changed int
	Same    int
}

func (s *Server) importPage(w http.ResponseWriter, r *http.Request, status int, p *page, d *importData) {
	d.Columns, d.MaxMB = appliance.CSVColumns, s.csvMax()>>20
	if d.MaxMB == 0 {
		d.MaxMB = 1
	}
	d.Rows = min(max(strings.Count(d.Text, "\n")+2, 8), 30)
	p.Title, p.Active, p.Data = "Import phones", "phones", d
	if p.Errors == nil {
		p.Errors = map[string]string{}
	}
	s.render(w, r, status, "phones_import.html", p)
}

func (s *Server) handleImportFormUI(w http.ResponseWriter, r *http.Request) {
	s.importPage(w, r, http.StatusOK, &page{Flash: flashOf(w, r)}, &importData{})
}

// csvForm reads the import form, multipart or urlencoded, within the size
// limit, before ui checks its CSRF field (ui reads it with PostFormValue,
// which then finds it in the parsed form either way). Without a session it
// reads nothing: ui sends the request to the login. A form too large or
// unreadable is answered here, with the form page saying so: nothing is
// imported or shown but the empty form, so no CSRF token is needed.
func (s *Server) csvForm(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess, err := s.sessionOf(r)
		if err != nil {
			next(w, r)
			return
		}
		// Room for the CSV, percent-encoded (a comma takes 3 bytes), plus
		// the other fields.
		r.Body = http.MaxBytesReader(w, r.Body, 3*s.csvMax()+64<<10)
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
			err = r.ParseMultipartForm(s.csvMax() + 64<<10)
			if r.MultipartForm != nil {
				defer r.MultipartForm.RemoveAll()
			}
		} else {
			err = r.ParseForm()
		}
		if err != nil {
			r = r.WithContext(contextWith(r, sess))
			status, field, msg := http.StatusBadRequest, "file", "The form could not be read; choose the file again."
			if r.MultipartForm == nil && r.Header.Get("Content-Type") != "" && !strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/") {
				field = "csv"
			}
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) || errors.Is(err, multipart.ErrMessageTooLarge) {
				status, msg = http.StatusRequestEntityTooLarge, s.csvTooLarge()
			}
			s.logger().Info("import form refused", "err", err, "remote", r.RemoteAddr)
			s.importPage(w, r, status, &page{Errors: map[string]string{field: msg}}, &importData{})
			return
		}
		next(w, r)
	}
}

func (s *Server) csvTooLarge() string {
	return fmt.Sprintf("The CSV is too large: at most %d MB. Split it into several files and import them one by one.", max(s.csvMax()>>20, 1))
}

// formProblem is what is wrong with the import form as a whole, said next
// to its field.
type formProblem struct {
	status int
	field  string
	msg    string
}

// csvOfForm returns the CSV sent: the file chosen, else the rows pasted.
func (s *Server) csvOfForm(r *http.Request) (string, *formProblem) {
	if r.MultipartForm != nil {
		if fhs := r.MultipartForm.File["file"]; len(fhs) > 0 && fhs[0].Size > 0 {
			if fhs[0].Size > s.csvMax() {
				return "", &formProblem{http.StatusRequestEntityTooLarge, "file", s.csvTooLarge()}
			}
			f, err := fhs[0].Open()
			if err != nil {
				return "", &formProblem{http.StatusBadRequest, "file", "The file could not be read; choose it again."}
			}
			defer f.Close()
			b, err := io.ReadAll(io.LimitReader(f, s.csvMax()+1))
			if err != nil {
				return "", &formProblem{http.StatusBadRequest, "file", "The file could not be read; choose it again."}
			} else if int64(len(b)) > s.csvMax() {
				return "", &formProblem{http.StatusRequestEntityTooLarge, "file", s.csvTooLarge()}
			}
			return string(b), nil
		}
	}
	text := r.PostFormValue("csv")
	if int64(len(text)) > s.csvMax() {
		return "", &formProblem{http.StatusRequestEntityTooLarge, "csv", s.csvTooLarge()}
	}
	if strings.TrimSpace(text) == "" {
		return "", &formProblem{http.StatusBadRequest, "file", "Choose a CSV file, or paste its rows below."}
	}
	return text, nil
}

func (s *Server) handleImportUI(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	text, problem := s.csvOfForm(r)
	if problem != nil {
		s.importPage(w, r, problem.status, &page{Errors: map[string]string{problem.field: problem.msg}}, &importData{})
		return
	}
	text = strings.TrimPrefix(text, "\ufeff")
	d := &importData{CSV: text, Checked: true}
	dryRun := r.PostFormValue("step") != "import"
	phones, err := appliance.ParseCSV(strings.NewReader(text), s.Catalog)
	d.Errors = appliance.AllErrors(err)
	if err != nil && d.Errors == nil {
		s.fail(w, r, err)
		return
	}
	var res *appliance.ImportResult
	if len(phones) > 0 {
		// A preview checks against the store even the file's bad phones,
		// so that it lists every error at once.
		res, err = s.Services.Import.ImportPhones(ctx, phones, dryRun || len(d.Errors) > 0)
		if err != nil {
			more := appliance.AllErrors(err)
			if more == nil || appliance.ErrorCode(err) == appliance.EUNAVAILABLE {
				s.fail(w, r, err)
				return
			}
			d.Errors = append(d.Errors, more...)
			res = nil
		}
	}
	sort.SliceStable(d.Errors, func(i, j int) bool { return d.Errors[i].Line < d.Errors[j].Line })
	if len(phones) == 0 && len(d.Errors) == 0 {
		d.Checked, d.Text = false, text
		s.importPage(w, r, http.StatusBadRequest, &page{Errors: map[string]string{"csv": "The CSV names its columns but holds no phone: add a row per line key (or one per phone without keys)."}}, d)
		return
	}
	if len(d.Errors) > 0 {
		d.Text = text
		s.importPage(w, r, http.StatusBadRequest, &page{Flash: csvErrorCount(len(d.Errors), dryRun), FlashError: true}, d)
		return
	}
	if res != nil && res.Details != nil {
		d.Phones, d.NewKeys = res.Details.Phones, res.Details.NewKeys
	}
	for _, ph := range d.Phones {
		switch ph.Action {
		case appliance.ImportAdded:
			d.Added++
		case appliance.ImportChanged:
			d.Changed++
		default:
			d.Same++
		}
	}
	if dryRun || res == nil {
		s.importPage(w, r, http.StatusOK, &page{}, d)
		return
	}
	msg := fmt.Sprintf("Imported: %d added, %d changed", d.Added, d.Changed)
	if d.Same > 0 {
		msg += fmt.Sprintf(", %d unchanged", d.Same)
	}
	msg += fmt.Sprintf(", %d %s created.", len(d.NewKeys), csvPlural(len(d.NewKeys), "key", "keys"))
	s.logger().Info("phones imported in the browser", "user", sessionFrom(r).UserName, "phones", res.Phones,
		"added", d.Added, "changed", d.Changed, "keys_created", res.KeysCreated)
	redirectBack(w, r, "/phones", msg)
}

func csvErrorCount(n int, dryRun bool) string {
	s := fmt.Sprintf("%d %s in the CSV", n, csvPlural(n, "error", "errors"))
	them := csvPlural(n, "it", "them")
	if !dryRun {
		return s + ": nothing was imported. Correct " + them + " below and check again."
	}
	return s + ": correct " + them + " below and check again. Nothing was written."
}

func csvPlural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

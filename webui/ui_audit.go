package webui

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/provbox/provbox/appliance"
)

// The audit trail (issue 15): who changed what, when, and which phones the
// change reached and confirmed.
//
//	GET /audit               newest first, AuditPage a page; ?q= searches who, what and the
//	                         values, ?mac= one phone's entries, ?before=<id> the older page
//	GET /api/v1/audit        the same as a JSON array: ?q=&mac=&before=&limit=
//
// The page's search is a link, like every other search of provbox.

func (s *Server) routesAudit(mux *http.ServeMux) {
	mux.HandleFunc("GET /audit", s.ui(s.handleAuditUI))
	mux.Handle("GET /api/v1/audit", s.requireAuth(s.handleListAudit))
}

// auditFilter reads ?q=&mac=&before=&limit= (EINVALID naming the
// parameter).
func auditFilter(q url.Values) (appliance.AuditFilter, error) {
	f := appliance.AuditFilter{Q: q.Get("q"), MAC: q.Get("mac")}
	for _, p := range []struct {
		name string
		set  func(int64)
	}{
		{"before", func(v int64) { f.Before = v }},
		{"limit", func(v int64) { f.Limit = int(v) }},
	} {
		raw := strings.TrimSpace(q.Get(p.name))
		if raw == "" {
			continue
		}
		v, err := strconv.ParseInt(raw, 10, 32)
		if err != nil && p.name == "before" {
			v, err = strconv.ParseInt(raw, 10, 64)
		}
		if err != nil || v < 0 {
			return f, appliance.Errorf(appliance.EINVALID, p.name, "%s: %q is not a positive number", p.name, raw)
		}
		p.set(v)
	}
	return f, f.Validate()
}

func (s *Server) auditService() (appliance.AuditService, error) {
	if s.Services.Audit == nil {
		return nil, appliance.Errorf(appliance.ENOTFOUND, "", "this server keeps no audit trail")
	}
	return s.Services.Audit, nil
}

// handleListAudit answers the entries, newest first.
func (s *Server) handleListAudit(w http.ResponseWriter, r *http.Request) {
	svc, err := s.auditService()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f, err := auditFilter(r.URL.Query())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	list, err := svc.FindAudit(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, list)
}

// ---- /audit ----------------------------------------------------------------

// auditShown is how many of an entry's phones the page names.
const auditShown = 10

type auditRow struct {
	*appliance.AuditEntry
	When     string // local time with its zone
	Shown    []auditPhoneRow
	More     int    // phones not named
	JSON     string // the entry alone from the API: every phone
	Progress string
}

type auditPhoneRow struct {
	appliance.AuditPhone
	State, Badge, At string // "confirmed", "reached" or "waiting"; the badge's class; when
}

type auditData struct {
	Q, MAC  string
	Entries []auditRow
	Older   string // the next page's URL, "" on the last
	Zone    string
}

func (s *Server) handleAuditUI(w http.ResponseWriter, r *http.Request) {
	svc, err := s.auditService()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	d := &auditData{Q: strings.TrimSpace(q.Get("q")), MAC: strings.TrimSpace(q.Get("mac")), Zone: zoneName(time.Now())}
	p := &page{Flash: flashOf(w, r), Title: "Audit trail", Active: "audit", Data: d}
	f, err := auditFilter(q)
	if err == nil {
		f.Limit = appliance.AuditPage + 1 // one more tells whether there is an older page
		var list []*appliance.AuditEntry
		if list, err = svc.FindAudit(r.Context(), f); err == nil {
			d.Entries, d.Older = auditRows(list, q)
		}
	}
	if err != nil {
		p.Form = q // the search, its fields marked
		if status, ok := s.formFailed(w, r, p, err); ok {
			s.render(w, r, status, "audit.html", p)
		}
		return
	}
	s.render(w, r, http.StatusOK, "audit.html", p)
}

// auditRows shapes a page of entries (the one beyond AuditPage only says
// there is an older page, whose link keeps the search).
func auditRows(list []*appliance.AuditEntry, q url.Values) ([]auditRow, string) {
	older := ""
	if len(list) > appliance.AuditPage {
		list = list[:appliance.AuditPage]
		v := url.Values{}
		for _, k := range []string{"q", "mac"} {
			if s := strings.TrimSpace(q.Get(k)); s != "" {
				v.Set(k, s)
			}
		}
		v.Set("before", strconv.FormatInt(list[len(list)-1].ID, 10))
		older = "/audit?" + v.Encode()
	}
	rows := make([]auditRow, 0, len(list))
	for _, e := range list {
		row := auditRow{AuditEntry: e, When: localTime(e.At), Progress: e.ProgressText(),
			JSON: "/api/v1/audit?limit=1&before=" + strconv.FormatInt(e.ID+1, 10)}
		for i, ph := range e.Phones {
			if i == auditShown {
				row.More = len(e.Phones) - auditShown
				break
			}
			pr := auditPhoneRow{AuditPhone: ph, State: "waiting", Badge: "pending"}
			switch {
			case ph.ConfirmedAt != nil:
				pr.State, pr.Badge, pr.At = "confirmed", "synced", localTime(*ph.ConfirmedAt)
			case ph.ReachedAt != nil:
				pr.State, pr.Badge, pr.At = "reached", "fetched", localTime(*ph.ReachedAt)
			}
			row.Shown = append(row.Shown, pr)
		}
		rows = append(rows, row)
	}
	return rows, older
}

// localTime is t in the box's time zone, with the zone: "2026-11-29
// 10:00:00 CET".
func localTime(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05 MST") }

// zoneName names the box's time zone: "CET (UTC+01:00)".
func zoneName(t time.Time) string {
	name, off := t.Local().Zone()
	if off == 0 && name == "UTC" {
		return name
	}
	return name + " (UTC" + t.Local().Format("-07:00") + ")"
}

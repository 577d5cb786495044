package webui_test

import (
	"bytes"
	"html"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/provbox/provbox/appliance"
	"github.com/provbox/provbox/webui"
)

// postMultipart submits a multipart form (a file input "file" when
// fileName is set), with the session's CSRF token unless fields has one.
func (b *browser) postMultipart(path string, fields url.Values, fileName, file string) response {
	b.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if _, ok := fields["csrf"]; !ok && b.csrf != "" {
		mw.WriteField("csrf", b.csrf)
	}
	for k, vs := range fields {
		for _, v := range vs {
			mw.WriteField(k, v)
		}
	}
	if fileName != "" {
		fw, err := mw.CreateFormFile("file", fileName)
		if err != nil {
			b.t.Fatal(err)
		}
		fw.Write([]byte(file))
	}
	mw.Close()
	req, _ := http.NewRequest("POST", b.ts.URL()+path, &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return b.do(req)
}

var hiddenCSVRe = regexp.MustCompile(`<input type="hidden" name="csv" value="([^"]*)">`)

// importButton returns the CSV the preview's Import button posts back, ""
// when the page has no such button.
func importButton(body string) string {
	m := hiddenCSVRe.FindStringSubmatch(body)
	if m == nil || !strings.Contains(body, `name="step" value="import"`) {
		return ""
	}
	return html.UnescapeString(m[1])
}

// csvState is what the store holds, to check that a preview or a refused
// import wrote nothing.
func csvState(t testing.TB, ts *testServer) string {
	t.Helper()
	return string(ts.call(t, "GET", "/api/v1/phones.csv", nil, 200, nil).Body) + "\n" +
		string(ts.call(t, "GET", "/api/v1/keys", nil, 200, nil).Body)
}

func TestUICSV_PreviewAndImport(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t)
	ts.mustExtension(t, "1001", "Alice")
	ts.mustExtension(t, "1002", "Bob")
	ts.mustLocation(t, "HQ")
	ts.mustPhone(t, "001565000001", "T46G", "1001") // unchanged below
	ts.mustPhone(t, "001565000002", "T46G", "1002") // changed below
	b := newBrowser(t, ts)

	const in = `mac,name,description,location,manufacturer,model,expansion_modules,module,position,key_type,key_value,key_label
001565000001,001565000001,,,Yealink,T46G,0,0,1,account,1001,
001565000001,,,,,,,0,2,account,1001,
001565000002,Reception,,HQ,Yealink,T48G,0,0,1,account,1002,
001565000002,,,,,,,0,2,speed_dial,5551234,Pizza
00:15:65:00:00:03,Warehouse,,,,T54W,,,1,account,1001,
00:15:65:00:00:03,,,,,,,,2,blf,1002,Bob
`
	before := csvState(t, ts)
	for _, tc := range []struct {
		name string
		post func() response
	}{
		{"pasted", func() response {
			return b.post("/phones/import", url.Values{"step": {"preview"}, "csv": {in}})
		}},
		{"file", func() response {
			return b.postMultipart("/phones/import", url.Values{"step": {"preview"}}, "phones.csv", in)
		}},
		{"pasted, multipart", func() response {
			return b.postMultipart("/phones/import", url.Values{"step": {"preview"}, "csv": {in}}, "", "")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.post()
			body := string(r.Body)
			if r.Status != 200 {
				t.Fatalf("preview: %d\n%s", r.Status, body)
			}
			preview := between(t, body, `id="preview-phones"`, `</table>`)
			for _, want := range []string{
				"00:15:65:00:00:03", "Warehouse", "import-added",
				"import-changed", "<strong>name</strong>: <span class=\"old\">001565000002</span>", "Reception",
				"<strong>location</strong>: <span class=\"old\">(none)</span>", "HQ",
				"<strong>model</strong>: <span class=\"old\">Yealink T46G</span>", "Yealink T48G",
				"<strong>key 2</strong>", "speed_dial 5551234 Pizza",
				"import-unchanged",
			} {
				if !strings.Contains(preview, want) {
					t.Errorf("preview lacks %q:\n%s", want, preview)
				}
			}
			if !strings.Contains(body, "1 added</strong>, <strong>1 changed</strong>, 1 unchanged; 2 new button configurations") {
				t.Errorf("summary:\n%s", body)
			}
			keys := between(t, body, `id="new-keys-h"`, `</table>`)
			if !strings.Contains(keys, "Pizza") || !strings.Contains(keys, "Bob") {
				t.Errorf("new keys:\n%s", keys)
			}
			if got := importButton(body); got != in {
				t.Errorf("the import button posts %q, want the CSV", got)
			}
			if !strings.Contains(body, ">Import 3 phones</button>") {
				t.Errorf("no Import 3 phones button")
			}
			if after := csvState(t, ts); after != before {
				t.Fatalf("the preview wrote:\n%s\nwas:\n%s", after, before)
			}
		})
	}

	// The Import button of the preview imports, and says what it did.
	r := b.post("/phones/import", url.Values{"step": {"preview"}, "csv": {in}})
	r = b.post("/phones/import", url.Values{"step": {"import"}, "csv": {importButton(string(r.Body))}})
	if r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/phones" {
		t.Fatalf("import: %d %s\n%s", r.Status, r.Header.Get("Location"), r.Body)
	}
	page := string(b.follow(r).Body)
	if !strings.Contains(page, "Imported: 1 added, 1 changed, 1 unchanged, 2 keys created.") {
		t.Errorf("flash:\n%s", page)
	}
	var p appliance.Phone
	ts.call(t, "GET", "/api/v1/phones/001565000002", nil, 200, &p)
	if p.Name != "Reception" || p.Model != "T48G" || p.LocationID == nil {
		t.Errorf("imported %+v", p)
	}
	var layout []appliance.LayoutEntry
	ts.call(t, "GET", "/api/v1/phones/001565000003/keys", nil, 200, &layout)
	if len(layout) != 2 || layout[1].Label != "Bob" {
		t.Errorf("layout %+v", layout)
	}
	// Checked again, nothing changes.
	r = b.post("/phones/import", url.Values{"step": {"preview"}, "csv": {in}})
	if body := string(r.Body); !strings.Contains(body, "0 added</strong>, <strong>0 changed</strong>, 3 unchanged; 0 new") {
		t.Errorf("second preview:\n%s", between(t, body, `id="preview"`, `</table>`))
	}
}

// TestUICSV_Errors: every error is listed with its line (those found
// reading the file and those found checking it against the store), the
// CSV is kept in the text area to fix, there is no Import button, and
// nothing is written, by a preview or by a forced import.
func TestUICSV_Errors(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t)
	ts.mustExtension(t, "1001", "Alice")
	b := newBrowser(t, ts)
	const in = "mac,name,location,model,position,key_type,key_value,key_label\n" + // 1
		"001565000001,A,,T46G,1,account,1001,\n" + // 2
		"001565000001,,,,2,blf,1002,Bob\n" + // 3
		"001565000002,B,,T99,1,account,1001,\n" + // 4: no such model
		"001565000003,C,,T46G,1,account,1001,\n" + // 5
		"001565000003,,,,2,speed_dial,<b>x</b>,\n" + // 6: not a dial string (and escaped)
		"001565000004,D,Nowhere,T46G,1,account,9999,\n" // 7: no location, no extension
	before := csvState(t, ts)
	for _, step := range []string{"preview", "import"} {
		t.Run(step, func(t *testing.T) {
			r := b.post("/phones/import", url.Values{"step": {step}, "csv": {in}})
			body := string(r.Body)
			if r.Status != http.StatusBadRequest {
				t.Fatalf("%d\n%s", r.Status, body)
			}
			errs := between(t, body, `id="csv-errors"`, `</table>`)
			for _, want := range []string{
				`<th scope="row">line 4</th><td>model</td>`,
				`<th scope="row">line 6</th><td>key_value</td>`,
				`<th scope="row">line 7</th><td>location</td>`,
				`<th scope="row">line 7</th><td>key_value</td><td>no extension &#34;9999&#34;`,
				"4 errors: nothing was imported",
				`<th scope="col">Line</th><th scope="col">Field</th><th scope="col">Message</th>`,
			} {
				if !strings.Contains(errs, want) {
					t.Errorf("errors lack %q:\n%s", want, errs)
				}
			}
			if strings.Contains(body, "<b>x</b>") {
				t.Errorf("input not escaped")
			}
			if importButton(body) != "" || strings.Contains(body, `id="preview"`) {
				t.Errorf("a CSV with errors offers an import")
			}
			area := fieldBlock(t, body, "csv")
			if !strings.Contains(area, html.EscapeString("001565000004,D,Nowhere,T46G")) || !strings.Contains(area, `aria-invalid="true"`) {
				t.Errorf("the text area does not keep the CSV:\n%s", area)
			}
			if after := csvState(t, ts); after != before {
				t.Fatalf("wrote:\n%s", after)
			}
		})
	}
	for _, tc := range []struct {
		name, csv, want string
		line            int
	}{
		{"bad header", "mac,model,colour,size\n", `unknown column &#34;colour&#34;`, 1},
		{"bad mac and extension", "mac,model,position,key_type,key_value\n001565000001,T46G,1,account,1001\nnope,T46G,1,account,1001\n001565000002,T46G,1,account,4242\n", "is not a MAC address", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := b.post("/phones/import", url.Values{"step": {"preview"}, "csv": {tc.csv}})
			if body := string(r.Body); r.Status != 400 || !strings.Contains(body, tc.want) {
				t.Fatalf("%d, want 400 with %q:\n%s", r.Status, tc.want, body)
			}
		})
	}
	r := b.post("/phones/import", url.Values{"step": {"preview"}, "csv": {"mac,model,position,key_type,key_value\n001565000001,T46G,1,account,1001\nnope,T46G,1,account,1001\n001565000002,T46G,1,account,4242\n"}})
	body := string(r.Body)
	if !strings.Contains(body, "line 3</th>") || !strings.Contains(body, "line 4</th>") {
		t.Errorf("a file's and the store's errors are not both listed:\n%s", body)
	}
}

func TestUICSV_FormProblems(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t, func(s *webui.Server) { webui.SetCSVMaxBody(s, 1024) })
	b := newBrowser(t, ts)
	big := "mac,model\n" + strings.Repeat("001565000001,T46G\n", 100)
	for _, tc := range []struct {
		name   string
		post   func() response
		status int
		field  string
		want   string
	}{
		{"nothing sent", func() response { return b.post("/phones/import", url.Values{"step": {"preview"}}) }, 400, "file", "Choose a CSV file"},
		{"header only", func() response {
			return b.post("/phones/import", url.Values{"step": {"preview"}, "csv": {"mac,model\n"}})
		}, 400, "csv", "holds no phone"},
		{"empty file", func() response {
			return b.postMultipart("/phones/import", url.Values{"step": {"preview"}}, "empty.csv", "")
		}, 400, "file", "Choose a CSV file"},
		{"file too large", func() response {
			return b.postMultipart("/phones/import", url.Values{"step": {"preview"}}, "big.csv", big)
		}, 413, "file", "The CSV is too large"},
		{"paste too large", func() response { return b.post("/phones/import", url.Values{"step": {"preview"}, "csv": {big}}) }, 413, "csv", "The CSV is too large"},
		{"body too large", func() response {
			return b.postMultipart("/phones/import", url.Values{"step": {"preview"}}, "huge.csv", strings.Repeat(big, 50))
		}, 413, "file", "The CSV is too large"},
		{"urlencoded body too large", func() response {
			return b.post("/phones/import", url.Values{"step": {"preview"}, "csv": {strings.Repeat(big, 50)}})
		}, 413, "csv", "The CSV is too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.post()
			body := string(r.Body)
			if r.Status != tc.status {
				t.Fatalf("%d, want %d:\n%s", r.Status, tc.status, body)
			}
			if f := fieldBlock(t, body, tc.field); !strings.Contains(f, tc.want) || !strings.Contains(f, `aria-invalid="true"`) {
				t.Errorf("field %s lacks %q:\n%s", tc.field, tc.want, f)
			}
		})
	}
	if phones, _ := ts.svc.Phones.FindPhones(t.Context(), appliance.PhoneFilter{}); len(phones) != 0 {
		t.Fatalf("wrote %d phones", len(phones))
	}
}

func TestUICSV_CSRFAndLogin(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t)
	ts.mustExtension(t, "1001", "Alice")
	b := newBrowser(t, ts)
	const in = "mac,model,position,key_type,key_value\n001565000001,T46G,1,account,1001\n"
	for _, token := range []string{"", "forged"} {
		for _, step := range []string{"preview", "import"} {
			if r := b.post("/phones/import", url.Values{"csrf": {token}, "step": {step}, "csv": {in}}); r.Status != http.StatusForbidden {
				t.Errorf("urlencoded, token %q, %s: %d", token, step, r.Status)
			}
			if r := b.postMultipart("/phones/import", url.Values{"csrf": {token}, "step": {step}}, "phones.csv", in); r.Status != http.StatusForbidden {
				t.Errorf("multipart, token %q, %s: %d", token, step, r.Status)
			}
		}
	}
	if phones, _ := ts.svc.Phones.FindPhones(t.Context(), appliance.PhoneFilter{}); len(phones) != 0 {
		t.Fatalf("a refused form imported %d phones", len(phones))
	}
	// With the token, multipart too: the token is read from the parsed form.
	if r := b.postMultipart("/phones/import", url.Values{"step": {"import"}}, "phones.csv", in); r.Status != http.StatusSeeOther {
		t.Fatalf("multipart import: %d\n%s", r.Status, r.Body)
	}

	anon := &browser{t: t, ts: ts, hc: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	for _, path := range []string{"/phones/import", "/phones.csv"} {
		if r := anon.get(path); r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/login") {
			t.Errorf("GET %s anonymous: %d %s", path, r.Status, r.Header.Get("Location"))
		}
	}
	if r := anon.postMultipart("/phones/import", url.Values{"step": {"import"}}, "phones.csv", in); r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/login") {
		t.Errorf("POST anonymous: %d %s", r.Status, r.Header.Get("Location"))
	}
}

func TestUICSV_ExportAndForm(t *testing.T) {
	t.Parallel()
	ts := MustOpenServer(t)
	ts.mustExtension(t, "1001", "Alice")
	ts.mustPhone(t, "001565aabbcc", "T46G", "1001")
	b := newBrowser(t, ts)
	r := b.get("/phones.csv")
	if r.Status != 200 || r.Header.Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("export: %d %s", r.Status, r.Header.Get("Content-Type"))
	}
	if cd, want := r.Header.Get("Content-Disposition"), `attachment; filename=provbox-phones-`+time.Now().Format("2006-01-02")+`.csv`; cd != want {
		t.Errorf("Content-Disposition %q, want %q", cd, want)
	}
	body := string(r.Body)
	if !strings.HasPrefix(body, strings.Join(appliance.CSVColumns, ",")+"\n") || !strings.Contains(body, "\n001565aabbcc,001565aabbcc,,,Yealink,T46G,0,0,1,account,1001,Alice\n") {
		t.Errorf("export:\n%s", body)
	}
	if api := string(ts.call(t, "GET", "/api/v1/phones.csv", nil, 200, nil).Body); api != body {
		t.Errorf("the page's export differs from the API's:\n%s\n%s", body, api)
	}

	form := string(b.get("/phones/import").Body)
	for _, want := range []string{
		`enctype="multipart/form-data"`, `<label for="f-file">`, `<label for="f-csv">`, `href="/phones.csv"`,
		strings.Join(appliance.CSVColumns, ","), `<th scope="row"><code>expansion_modules</code></th>`, `name="csrf" value="` + b.csrf + `"`,
	} {
		if !strings.Contains(form, want) {
			t.Errorf("form lacks %q", want)
		}
	}
}

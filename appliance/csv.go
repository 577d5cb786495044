package appliance

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// CSVColumns are the columns of the phones CSV, in export order. A phone
// takes one row per line key; its own columns may be left blank on its
// second and later rows (all but mac, which every row carries). A phone without keys takes one row with the key
// columns blank. expansion_modules is the phone's number of key modules;
// module is where a key sits: 0 (or blank) the phone itself, N its
// expansion module N. Files without these two columns import as before.
var CSVColumns = []string{"mac", "name", "description", "location", "manufacturer", "model", "expansion_modules", "module", "position", "key_type", "key_value", "key_label"}

// PhoneImport is one phone read from a CSV file (or written to one).
type PhoneImport struct {
	Line     int // first line the phone appears on
	Phone    Phone
	Location string // location name, blank for none
	Keys     []ImportKey
	// Partial marks a phone that ParseCSV found errors in (its rows
	// with errors are left out): ImportPhones checks its location and
	// keys, but neither adds nor changes it.
	Partial bool
}

// ImportKey is one line key of a PhoneImport. For account keys the value is
// the extension number and the label is ignored (it follows the extension).
type ImportKey struct {
	Line     int
	Module   int
	Position int
	Type     string
	Value    string
	Label    string
}

// ImportResult reports what an import did (or, dry, would do).
type ImportResult struct {
	DryRun        bool `json:"dry_run"`
	Phones        int  `json:"phones"`
	PhonesCreated int  `json:"phones_created"`
	PhonesUpdated int  `json:"phones_updated"`
	KeysCreated   int  `json:"keys_created"`
	LineKeys      int  `json:"line_keys"`
	// Details says, phone by phone, what the import does (for a preview);
	// the API's answer leaves it out.
	Details *ImportDetails `json:"-"`
}

// What an import does to a phone (PhoneChange.Action).
const (
	ImportAdded     = "added"
	ImportChanged   = "changed"
	ImportUnchanged = "unchanged"
)

// ImportDetails lists what an import does: each phone, in the order of the
// file, and each key it creates.
type ImportDetails struct {
	Phones  []PhoneChange
	NewKeys []ImportKey // Line is the first row naming the key
}

// PhoneChange is what an import does to one phone: adds it, or changes
// the fields listed (or nothing).
type PhoneChange struct {
	Line     int
	MAC      string
	Name     string
	Action   string // ImportAdded, ImportChanged or ImportUnchanged
	Changes  []FieldChange
	LineKeys int // its keys after the import
}

// FieldChange is one field an import changes on an existing phone: "name",
// "description", "location", "model", "expansion_modules", or one line
// key, "key 3" ("module 1 key 2" on an expansion module). Old or New is
// blank for a key that comes or goes.
type FieldChange struct {
	Field, Old, New string
}

// ImportService imports and exports phones with their layouts.
type ImportService interface {
	// ImportPhones applies every phone in one transaction: an existing MAC is
	// updated and its layout replaced, a new one created. Keys other than
	// account keys are matched by type, value and label and created when
	// missing; account keys by extension number, which must exist; locations
	// by name, which must exist. Any error (EINVALID with Line and Field)
	// leaves the database untouched. With dryRun nothing is written.
	ImportPhones(ctx context.Context, phones []PhoneImport, dryRun bool) (*ImportResult, error)
	ExportPhones(ctx context.Context) ([]PhoneImport, error)
}

// MaxCSVRows bounds an import.
const MaxCSVRows = 100000

// MaxCSVErrors bounds the errors one check lists: past it the check stops.
const MaxCSVErrors = 500

// ParseCSV reads a phones CSV, checking models against the catalog. The
// header names the columns (any order, case-insensitive; mac and model
// are required, unknown columns refused). Errors carry the line and the
// field.
//
// A bad row does not stop the check: every error is collected (up to
// MaxCSVErrors) and returned as an Errors, whose first is what
// ErrorMessage, ErrorLine and ErrorField describe. Together with it come
// the phones that could be read, those with a bad row marked Partial, so
// that a preview can check them against the store too (ImportPhones
// reports their keys' and locations' errors but changes nothing with
// them). Other errors (reading r) stop it and come alone.
func ParseCSV(r io.Reader, c *Catalog) ([]PhoneImport, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err == io.EOF {
		return nil, &Error{Code: EINVALID, Field: "header", Line: 1, Message: "empty file; the first line must name the columns: " + strings.Join(CSVColumns, ",")}
	} else if err != nil {
		return nil, csvReadError(err)
	}
	col, errs := csvHeader(header)
	if len(errs) > 0 {
		return nil, errs // the rows cannot be read without their columns
	}
	ps := &csvParser{catalog: c, col: col, width: len(header), byMAC: map[string]*PhoneImport{}}
	rows := 0
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		} else if err != nil {
			err = csvReadError(err)
			var e *Error
			if !errors.As(err, &e) {
				return nil, err // reading failed (too large, I/O): nothing more to say
			}
			if ps.fail(nil, e, e.Line) {
				break
			}
			continue
		}
		line, _ := cr.FieldPos(0)
		if rows++; rows > MaxCSVRows {
			ps.errs = append(ps.errs, &Error{Code: EINVALID, Field: "file", Line: line, Message: fmt.Sprintf("more than %d rows", MaxCSVRows)})
			break
		}
		if ps.row(rec, line) {
			break
		}
	}
	res := make([]PhoneImport, len(ps.out))
	for i, p := range ps.out {
		res[i] = *p
	}
	if len(ps.errs) > 0 {
		return res, ps.errs
	}
	return res, nil
}

// csvHeader maps the header's column names to their indexes, with an
// error for each unknown, repeated or missing column.
func csvHeader(header []string) (map[string]int, Errors) {
	var errs Errors
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		switch _, dup := col[h]; {
		case !slices.Contains(CSVColumns, h):
			errs = append(errs, &Error{Code: EINVALID, Field: "header", Line: 1, Message: fmt.Sprintf("unknown column %q (columns: %s)", Clip(h), strings.Join(CSVColumns, ","))})
			if len(errs) >= MaxCSVErrors {
				return nil, errs
			}
		case dup:
			errs = append(errs, &Error{Code: EINVALID, Field: "header", Line: 1, Message: fmt.Sprintf("column %q appears twice", Clip(h))})
		default:
			col[h] = i
		}
	}
	for _, req := range []string{"mac", "model"} {
		if _, ok := col[req]; !ok {
			errs = append(errs, &Error{Code: EINVALID, Field: "header", Line: 1, Message: fmt.Sprintf("missing column %q", req)})
		}
	}
	return col, errs
}

// csvParser holds what ParseCSV has read so far.
type csvParser struct {
	catalog *Catalog
	col     map[string]int // column name → index
	width   int            // fields per row (the header's)
	out     []*PhoneImport // in the order of the file
	byMAC   map[string]*PhoneImport
	errs    Errors
}

// fail records a row's error against phone p (nil: no phone) and reports
// whether the check must stop (too many errors).
func (ps *csvParser) fail(p *PhoneImport, err error, line int) bool {
	if p != nil {
		p.Partial = true
	}
	list := AllErrors(err)
	if list == nil { // not a rule broken: cannot happen, said plainly if it does
		list = []*Error{{Code: EINVALID, Message: err.Error()}}
	}
	for _, e := range list {
		c := *e
		c.Line = line
		ps.errs = append(ps.errs, &c)
	}
	if len(ps.errs) >= MaxCSVErrors {
		ps.errs = append(ps.errs, &Error{Code: EINVALID, Field: "file", Line: line, Message: fmt.Sprintf("more than %d errors: the check stopped here; correct these first", MaxCSVErrors)})
		return true
	}
	return false
}

// row reads one record: its phone (new, or the one an earlier row named)
// and its line key. It reports whether the check must stop.
func (ps *csvParser) row(rec []string, line int) (stop bool) {
	if len(rec) != ps.width {
		return ps.fail(nil, &Error{Code: EINVALID, Field: "row", Message: fmt.Sprintf("%d fields, the header has %d", len(rec), ps.width)}, line)
	}
	if strings.Join(rec, "") == "" {
		return false // blank line
	}
	get := func(name string) string {
		if i, ok := ps.col[name]; ok {
			return strings.TrimSpace(unneutralize(rec[i]))
		}
		return ""
	}
	mac, err := ParseMAC(get("mac"))
	if err != nil {
		return ps.fail(nil, err, line)
	}
	p := ps.byMAC[mac]
	if p == nil {
		p, stop = ps.newPhone(mac, get, line)
	} else {
		stop = ps.samePhone(p, get, line)
	}
	if stop {
		return true
	}
	k, err := csvKey(get, line)
	if err != nil {
		return ps.fail(p, err, line)
	}
	if k != nil {
		p.Keys = append(p.Keys, *k)
	}
	return false
}

// newPhone starts the phone a row first names.
func (ps *csvParser) newPhone(mac string, get func(string) string, line int) (*PhoneImport, bool) {
	modules, err := csvInt("expansion_modules", get("expansion_modules"))
	p := &PhoneImport{Line: line, Location: get("location"), Phone: Phone{
		MAC: mac, Name: get("name"), Description: get("description"),
		Manufacturer: get("manufacturer"), Model: get("model"), ExpansionModules: modules,
	}}
	ps.byMAC[mac] = p
	ps.out = append(ps.out, p)
	if err == nil {
		_, err = p.Phone.Normalize(ps.catalog)
	}
	if err != nil {
		return p, ps.fail(p, err, line)
	}
	return p, false
}

// samePhone checks a later row of phone p: it may repeat the phone's
// columns or leave them blank, but may not contradict the first row.
func (ps *csvParser) samePhone(p *PhoneImport, get func(string) string, line int) bool {
	for _, f := range []struct{ name, first string }{
		{"name", p.Phone.Name}, {"description", p.Phone.Description}, {"location", p.Location},
		{"expansion_modules", strconv.Itoa(p.Phone.ExpansionModules)},
	} {
		if v := get(f.name); v != "" && v != f.first {
			if ps.fail(p, &Error{Code: EINVALID, Field: f.name, Message: fmt.Sprintf("%q differs from %q on line %d for the same phone", Clip(v), Clip(f.first), p.Line)}, line) {
				return true
			}
		}
	}
	if v := get("model"); v != "" {
		if m, err := ps.catalog.Normalize(get("manufacturer"), v); err != nil {
			return ps.fail(p, err, line)
		} else if m.Name != p.Phone.Model {
			return ps.fail(p, &Error{Code: EINVALID, Field: "model", Message: fmt.Sprintf("%q differs from %q on line %d for the same phone", Clip(v), p.Phone.Model, p.Line)}, line)
		}
	}
	return false
}

// csvKey reads a row's line key: nil when its key columns are blank.
func csvKey(get func(string) string, line int) (*ImportKey, error) {
	pos, typ, val, label := get("position"), strings.ToLower(get("key_type")), get("key_value"), get("key_label")
	if pos == "" && typ == "" && val == "" && label == "" && get("module") == "" {
		return nil, nil
	}
	module, err := csvInt("module", get("module"))
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(pos)
	if err != nil {
		return nil, &Error{Code: EINVALID, Field: "position", Message: fmt.Sprintf("%q is not a line-key position", Clip(pos))}
	}
	if label == "" {
		label = val
	}
	if err := ValidateKeyValue(typ, val); err != nil {
		return nil, renameField(err, "key_")
	}
	// Checked for account keys too, although their label follows the
	// extension: nothing with a control character is accepted anywhere.
	if err := checkText("key_label", label, MaxLabel); err != nil {
		return nil, err
	}
	return &ImportKey{Line: line, Module: module, Position: n, Type: typ, Value: val, Label: label}, nil
}

// csvInt reads a small count column: blank is 0.
func csvInt(field, v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 99 {
		return 0, Errorf(EINVALID, field, "%q is not a number from 0 to 99", v)
	}
	return n, nil
}

// neutralize keeps a spreadsheet from running a cell as a formula (OWASP
// CSV injection): a cell starting with = + - @ TAB or CR, after any number
// of quotes, gets one more ' in front. unneutralize, on import, takes it
// off again, so "+15551234" and even "'=x" come back exactly.
func neutralize(cell string) string {
	if formulaLike(cell) {
		return "'" + cell
	}
	return cell
}

func unneutralize(cell string) string {
	if strings.HasPrefix(cell, "'") && formulaLike(cell[1:]) {
		return cell[1:]
	}
	return cell
}

func formulaLike(cell string) bool {
	rest := strings.TrimLeft(cell, "'")
	return rest != "" && strings.IndexByte("=+-@\t\r", rest[0]) >= 0
}

// WriteCSV writes phones in the format ParseCSV reads.
func WriteCSV(w io.Writer, phones []PhoneImport) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVColumns); err != nil {
		return err
	}
	for _, p := range phones {
		base := []string{p.Phone.MAC, neutralize(p.Phone.Name), neutralize(p.Phone.Description), neutralize(p.Location), p.Phone.Manufacturer, p.Phone.Model, strconv.Itoa(p.Phone.ExpansionModules)}
		if len(p.Keys) == 0 {
			if err := cw.Write(append(base, "", "", "", "", "")); err != nil {
				return err
			}
		}
		for _, k := range p.Keys {
			row := append(append([]string(nil), base...), strconv.Itoa(k.Module), strconv.Itoa(k.Position), k.Type, neutralize(k.Value), neutralize(k.Label))
			if err := cw.Write(row); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// AtLine sets the CSV line of a domain error.
func atLine(err error, line int) error {
	var e *Error
	if errors.As(err, &e) {
		c := *e
		c.Line = line
		return &c
	}
	return err
}

// AtLine is atLine for other packages (the store reports rows by line).
func AtLine(err error, line int) error { return atLine(err, line) }

func renameField(err error, prefix string) error {
	var e *Error
	if errors.As(err, &e) {
		c := *e
		c.Field = prefix + c.Field
		return &c
	}
	return err
}

func csvReadError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &Error{Code: EINVALID, Field: "csv", Line: pe.Line, Message: pe.Err.Error()}
	}
	return fmt.Errorf("read csv: %w", err)
}

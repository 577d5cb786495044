package appliance

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
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
	cr.ReuseRecord = false
	header, err := cr.Read()
	if err == io.EOF {
		return nil, &Error{Code: EINVALID, Field: "header", Line: 1, Message: "empty file; the first line must name the columns: " + strings.Join(CSVColumns, ",")}
	} else if err != nil {
		return nil, csvReadError(err)
	}
	var errs Errors
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		known := false
		for _, c := range CSVColumns {
			known = known || c == h
		}
		if !known {
			errs = append(errs, &Error{Code: EINVALID, Field: "header", Line: 1, Message: fmt.Sprintf("unknown column %q (columns: %s)", Clip(h), strings.Join(CSVColumns, ","))})
			if len(errs) >= MaxCSVErrors {
				return nil, errs
			}
			continue
		}
		if _, dup := col[h]; dup {
			errs = append(errs, &Error{Code: EINVALID, Field: "header", Line: 1, Message: fmt.Sprintf("column %q appears twice", Clip(h))})
			continue
		}
		col[h] = i
	}
	for _, req := range []string{"mac", "model"} {
		if _, ok := col[req]; !ok {
			errs = append(errs, &Error{Code: EINVALID, Field: "header", Line: 1, Message: fmt.Sprintf("missing column %q", req)})
		}
	}
	if len(errs) > 0 {
		return nil, errs // the rows cannot be read without their columns
	}
	var out []*PhoneImport
	byMAC := map[string]*PhoneImport{}
	rows := 0
	// fail records a row's error against phone p (nil: no phone) and
	// reports whether the check must stop (too many errors).
	fail := func(p *PhoneImport, err error, line int) bool {
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
			errs = append(errs, &c)
		}
		if len(errs) >= MaxCSVErrors {
			errs = append(errs, &Error{Code: EINVALID, Field: "file", Line: line, Message: fmt.Sprintf("more than %d errors: the check stopped here; correct these first", MaxCSVErrors)})
			return true
		}
		return false
	}
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
			if fail(nil, e, e.Line) {
				break
			}
			continue
		}
		line, _ := cr.FieldPos(0)
		if rows++; rows > MaxCSVRows {
			errs = append(errs, &Error{Code: EINVALID, Field: "file", Line: line, Message: fmt.Sprintf("more than %d rows", MaxCSVRows)})
			break
		}
		if len(rec) != len(header) {
			if fail(nil, &Error{Code: EINVALID, Field: "row", Message: fmt.Sprintf("%d fields, the header has %d", len(rec), len(header))}, line) {
				break
			}
			continue
		}
		get := func(name string) string {
			if i, ok := col[name]; ok {
				return strings.TrimSpace(unneutralize(rec[i]))
			}
			return ""
		}
		if strings.Join(rec, "") == "" {
			continue // blank line
		}
		mac, err := ParseMAC(get("mac"))
		if err != nil {
			if fail(nil, err, line) {
				break
			}
			continue
		}
		p := byMAC[mac]
		stop := false
		if p == nil {
			modules, err := csvInt("expansion_modules", get("expansion_modules"))
			p = &PhoneImport{Line: line, Location: get("location"), Phone: Phone{
				MAC: mac, Name: get("name"), Description: get("description"),
				Manufacturer: get("manufacturer"), Model: get("model"), ExpansionModules: modules,
			}}
			byMAC[mac] = p
			out = append(out, p)
			if err != nil {
				stop = fail(p, err, line)
			} else if _, err := p.Phone.Normalize(c); err != nil {
				stop = fail(p, err, line)
			}
		} else {
			// Later rows of a phone may repeat its columns or leave them blank,
			// but may not contradict the first row.
			for _, f := range []struct{ name, first string }{
				{"name", p.Phone.Name}, {"description", p.Phone.Description}, {"location", p.Location},
				{"expansion_modules", strconv.Itoa(p.Phone.ExpansionModules)},
			} {
				if v := get(f.name); v != "" && v != f.first && !stop {
					stop = fail(p, &Error{Code: EINVALID, Field: f.name, Message: fmt.Sprintf("%q differs from %q on line %d for the same phone", Clip(v), Clip(f.first), p.Line)}, line)
				}
			}
			if v := get("model"); v != "" && !stop {
				if m, err := c.Normalize(get("manufacturer"), v); err != nil {
					stop = fail(p, err, line)
				} else if m.Name != p.Phone.Model {
					stop = fail(p, &Error{Code: EINVALID, Field: "model", Message: fmt.Sprintf("%q differs from %q on line %d for the same phone", Clip(v), p.Phone.Model, p.Line)}, line)
				}
			}
		}
		if stop {
			break
		}
		pos, typ, val, label := get("position"), strings.ToLower(get("key_type")), get("key_value"), get("key_label")
		if pos == "" && typ == "" && val == "" && label == "" && get("module") == "" {
			continue
		}
		module, err := csvInt("module", get("module"))
		if err != nil {
			if fail(p, err, line) {
				break
			}
			continue
		}
		n, err := strconv.Atoi(pos)
		if err != nil {
			if fail(p, &Error{Code: EINVALID, Field: "position", Message: fmt.Sprintf("%q is not a line-key position", Clip(pos))}, line) {
				break
			}
			continue
		}
		if label == "" {
			label = val
		}
		k := ImportKey{Line: line, Module: module, Position: n, Type: typ, Value: val, Label: label}
		if err := ValidateKeyValue(typ, val); err != nil {
			if fail(p, renameField(err, "key_"), line) {
				break
			}
			continue
		}
		// Checked for account keys too, although their label follows the
		// extension: nothing with a control character is accepted anywhere.
		if err := checkText("key_label", label, MaxLabel); err != nil {
			if fail(p, err, line) {
				break
			}
			continue
		}
		p.Keys = append(p.Keys, k)
	}
	res := make([]PhoneImport, len(out))
	for i, p := range out {
		res[i] = *p
	}
	if len(errs) > 0 {
		return res, errs
	}
	return res, nil
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

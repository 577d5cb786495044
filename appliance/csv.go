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

// ParseCSV reads a phones CSV, checking models against the catalog. The
// header names the columns (any order, case-insensitive; mac and model
// are required, unknown columns refused). Errors carry the line and the
// field.
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
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		known := false
		for _, c := range CSVColumns {
			known = known || c == h
		}
		if !known {
			return nil, &Error{Code: EINVALID, Field: "header", Line: 1, Message: fmt.Sprintf("unknown column %q (columns: %s)", Clip(h), strings.Join(CSVColumns, ","))}
		}
		if _, dup := col[h]; dup {
			return nil, &Error{Code: EINVALID, Field: "header", Line: 1, Message: fmt.Sprintf("column %q appears twice", Clip(h))}
		}
		col[h] = i
	}
	for _, req := range []string{"mac", "model"} {
		if _, ok := col[req]; !ok {
			return nil, &Error{Code: EINVALID, Field: "header", Line: 1, Message: fmt.Sprintf("missing column %q", req)}
		}
	}
	var out []*PhoneImport
	byMAC := map[string]*PhoneImport{}
	rows := 0
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		} else if err != nil {
			return nil, csvReadError(err)
		}
		line, _ := cr.FieldPos(0)
		if rows++; rows > MaxCSVRows {
			return nil, &Error{Code: EINVALID, Field: "file", Line: line, Message: fmt.Sprintf("more than %d rows", MaxCSVRows)}
		}
		if len(rec) != len(header) {
			return nil, &Error{Code: EINVALID, Field: "row", Line: line, Message: fmt.Sprintf("%d fields, the header has %d", len(rec), len(header))}
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
			return nil, atLine(err, line)
		}
		p := byMAC[mac]
		if p == nil {
			modules, err := csvInt("expansion_modules", get("expansion_modules"))
			if err != nil {
				return nil, atLine(err, line)
			}
			p = &PhoneImport{Line: line, Location: get("location"), Phone: Phone{
				MAC: mac, Name: get("name"), Description: get("description"),
				Manufacturer: get("manufacturer"), Model: get("model"), ExpansionModules: modules,
			}}
			if _, err := p.Phone.Normalize(c); err != nil {
				return nil, atLine(err, line)
			}
			byMAC[mac] = p
			out = append(out, p)
		} else {
			// Later rows of a phone may repeat its columns or leave them blank,
			// but may not contradict the first row.
			for _, f := range []struct{ name, first string }{
				{"name", p.Phone.Name}, {"description", p.Phone.Description}, {"location", p.Location},
				{"expansion_modules", strconv.Itoa(p.Phone.ExpansionModules)},
			} {
				if v := get(f.name); v != "" && v != f.first {
					return nil, &Error{Code: EINVALID, Field: f.name, Line: line, Message: fmt.Sprintf("%q differs from %q on line %d for the same phone", Clip(v), Clip(f.first), p.Line)}
				}
			}
			if v := get("model"); v != "" {
				if m, err := c.Normalize(get("manufacturer"), v); err != nil {
					return nil, atLine(err, line)
				} else if m.Name != p.Phone.Model {
					return nil, &Error{Code: EINVALID, Field: "model", Line: line, Message: fmt.Sprintf("%q differs from %q on line %d for the same phone", Clip(v), p.Phone.Model, p.Line)}
				}
			}
		}
		pos, typ, val, label := get("position"), strings.ToLower(get("key_type")), get("key_value"), get("key_label")
		if pos == "" && typ == "" && val == "" && label == "" && get("module") == "" {
			continue
		}
		module, err := csvInt("module", get("module"))
		if err != nil {
			return nil, atLine(err, line)
		}
		n, err := strconv.Atoi(pos)
		if err != nil {
			return nil, &Error{Code: EINVALID, Field: "position", Line: line, Message: fmt.Sprintf("%q is not a line-key position", Clip(pos))}
		}
		if label == "" {
			label = val
		}
		k := ImportKey{Line: line, Module: module, Position: n, Type: typ, Value: val, Label: label}
		if err := ValidateKeyValue(typ, val); err != nil {
			return nil, atLine(renameField(err, "key_"), line)
		}
		// Checked for account keys too, although their label follows the
		// extension: nothing with a control character is accepted anywhere.
		if err := checkText("key_label", label, MaxLabel); err != nil {
			return nil, atLine(err, line)
		}
		p.Keys = append(p.Keys, k)
	}
	res := make([]PhoneImport, len(out))
	for i, p := range out {
		res[i] = *p
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

package webui

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/provbox/provbox/appliance"
)

// The key editor (SPEC §3 Layout): a phone's line keys drawn where they
// are on the handset — pages of a left and a right column — and each
// expansion module as its own panel. Every position is a plain <select> of
// the Button Configurations named key_<position> (the phone) or
// key_<module>_<position> (module N), so the form works without
// JavaScript; app.js adds drag and drop, which moves or swaps the values of
// two selects. One "new key" row creates a key from a typed value and puts
// it at a chosen position, in the same transaction as the layout.

// keyBoard is one panel of keys: the phone itself or one module.
type keyBoard struct {
	Title      string // "T54W" or "Expansion module 1 (EXP50)"
	Module     int
	LabelChars int
	Pages      []keyPage
}

// keyPage is one screen page: its keys in a left and a right column, and
// row by row as the handset shows them (a key, its label on the screen).
type keyPage struct {
	No          int
	First, Last int // positions
	Left, Right []keySlot
	Rows        []slotRow
}

// slotRow is one row of a page: the left key and the right key (nil when
// the column is shorter, or the model has one column).
type slotRow struct{ Left, Right *keySlot }

// keySlot is one position's select.
type keySlot struct {
	Name     string // form field
	Module   int
	Position int
	Selected string // key id, "" empty
	Label    string // the label as the phone shows it (cut to LabelChars)
	Cut      bool   // the label is longer than the phone shows
	Type     string
	Err      string
}

// slotName is the form field of a position.
func slotName(module, pos int) string {
	if module == 0 {
		return "key_" + strconv.Itoa(pos)
	}
	return "key_" + strconv.Itoa(module) + "_" + strconv.Itoa(pos)
}

// parseSlotName reads key_<pos> or key_<module>_<pos>.
func parseSlotName(name string) (appliance.Position, bool) {
	rest, ok := strings.CutPrefix(name, "key_")
	if !ok {
		return appliance.Position{}, false
	}
	mod, pos := "0", rest
	if a, b, found := strings.Cut(rest, "_"); found {
		mod, pos = a, b
	}
	m, err1 := strconv.Atoi(mod)
	p, err2 := strconv.Atoi(pos)
	if err1 != nil || err2 != nil || m < 0 || p < 1 || m > 99 || p > 999 {
		return appliance.Position{}, false
	}
	return appliance.Position{Module: m, Position: p}, true
}

// cutLabel cuts a label to what a key shows.
func cutLabel(label string, n int) (string, bool) {
	r := []rune(label)
	if n <= 0 || len(r) <= n {
		return label, false
	}
	return strings.TrimRight(string(r[:n]), " "), true
}

// buildBoards lays out the panels of a phone: its own line keys in pages
// of m.KeysPerPage (the first half of a page in the left column when the
// model has two), then each chained module. selected gives each slot's key
// id; keys the key facts by id.
func buildBoards(c *appliance.Catalog, m appliance.Model, modules int, selected func(name string) string, keys map[string]*appliance.Key, errs map[string]string) []keyBoard {
	var boards []keyBoard
	board := func(title string, module, total, perPage, columns, labelChars int) keyBoard {
		b := keyBoard{Title: title, Module: module, LabelChars: labelChars}
		if perPage <= 0 {
			perPage = total
		}
		for first, no := 1, 1; first <= total; first, no = first+perPage, no+1 {
			last := min(first+perPage-1, total)
			pg := keyPage{No: no, First: first, Last: last}
			half := (perPage + 1) / 2
			if columns < 2 {
				half = perPage
			}
			for pos := first; pos <= last; pos++ {
				name := slotName(module, pos)
				sl := keySlot{Name: name, Module: module, Position: pos, Selected: selected(name), Err: errs[name]}
				if k := keys[sl.Selected]; k != nil {
					sl.Type = k.Type
					sl.Label, sl.Cut = cutLabel(k.Label, labelChars)
				}
				if pos-first < half {
					pg.Left = append(pg.Left, sl)
				} else {
					pg.Right = append(pg.Right, sl)
				}
			}
			for i := 0; i < max(len(pg.Left), len(pg.Right)); i++ {
				var row slotRow
				if i < len(pg.Left) {
					row.Left = &pg.Left[i]
				}
				if i < len(pg.Right) {
					row.Right = &pg.Right[i]
				}
				pg.Rows = append(pg.Rows, row)
			}
			b.Pages = append(b.Pages, pg)
		}
		return b
	}
	if m.LineKeys > 0 {
		boards = append(boards, board(m.Name, 0, m.LineKeys, m.KeysPerPage, m.Columns, m.LabelChars))
	}
	if x, ok := c.ModuleOf(m); ok {
		for n := 1; n <= modules; n++ {
			boards = append(boards, board(fmt.Sprintf("Expansion module %d (%s)", n, x.Name), n, x.Keys, x.KeysPerPage, x.Columns, x.LabelChars))
		}
	}
	return boards
}

// layoutFromForm reads the key selects key_<pos> and key_<module>_<pos>
// ("" is empty) and the new-key row (new_type, new_value, new_label at
// new_at, a slot name). The entries come sorted by module and position,
// so that the domain's keys[i] index names the same entry here.
func layoutFromForm(f url.Values) ([]appliance.LayoutEntry, error) {
	layout := []appliance.LayoutEntry{}
	newAt := strings.TrimSpace(f.Get("new_at"))
	newValue := strings.TrimSpace(f.Get("new_value"))
	var at appliance.Position
	if newValue != "" {
		var ok bool
		if at, ok = parseSlotName(newAt); !ok {
			return nil, appliance.Errorf(appliance.EINVALID, "new_at", "choose the position for the new key")
		}
	}
	for name, vals := range f {
		pos, ok := parseSlotName(name)
		if !ok {
			if strings.HasPrefix(name, "key_") {
				return nil, appliance.Errorf(appliance.EINVALID, "keys", "%q is not a line key", name)
			}
			continue
		}
		if newValue != "" && pos == at {
			continue // the new key takes this position
		}
		for _, v := range vals {
			if v = strings.TrimSpace(v); v == "" {
				continue
			}
			id, err := strconv.ParseInt(v, 10, 64)
			if err != nil || id <= 0 {
				return nil, appliance.Errorf(appliance.EINVALID, name, "%q is not a button configuration", v)
			}
			layout = append(layout, appliance.LayoutEntry{Module: pos.Module, Position: pos.Position, KeyID: id})
		}
	}
	if newValue != "" {
		layout = append(layout, appliance.LayoutEntry{Module: at.Module, Position: at.Position,
			Type: strings.TrimSpace(f.Get("new_type")), Value: newValue, Label: strings.TrimSpace(f.Get("new_label"))})
	}
	appliance.SortLayout(layout)
	return layout, nil
}

// layoutErrors places a layout error: the whole layout's message on top of
// Device Provisioning ("keys"), and next to the position it is about (the
// new-key row when it is about the typed key).
func layoutErrors(err error, layout []appliance.LayoutEntry) map[string]string {
	msg := appliance.ErrorMessage(err)
	field := appliance.ErrorField(err)
	errs := map[string]string{"keys": msg}
	switch field {
	case "model", "expansion_modules", "new_at":
		errs[field] = msg
	}
	if strings.HasPrefix(field, "key_") {
		errs[field] = msg
	}
	if rest, ok := strings.CutPrefix(field, "keys["); ok {
		idx, sub, _ := strings.Cut(rest, "]")
		if i, err := strconv.Atoi(idx); err == nil && i >= 0 && i < len(layout) {
			e := layout[i]
			if e.KeyID == 0 && e.Value != "" {
				errs["new_value"] = msg
				if strings.Contains(sub, "type") {
					errs["new_type"] = msg
				}
			} else {
				errs[slotName(e.Module, e.Position)] = msg
			}
		}
	}
	return errs
}

// slotOptions lists every position of the boards as new_at choices
// (accounts: the positions are a phone's accounts, it has no line keys).
func slotOptions(boards []keyBoard, sel string, accounts bool) []option {
	opts := []option{{Value: "", Text: "(choose the position)"}}
	for _, b := range boards {
		for _, pg := range b.Pages {
			for _, sl := range append(append([]keySlot(nil), pg.Left...), pg.Right...) {
				where := fmt.Sprintf("Line key %d", sl.Position)
				if accounts {
					where = fmt.Sprintf("Account %d", sl.Position)
				} else if b.Module > 0 {
					where = fmt.Sprintf("Module %d key %d", b.Module, sl.Position)
				}
				if sl.Selected == "" {
					where += " (empty)"
				}
				opts = append(opts, option{Value: sl.Name, Text: where, Selected: sl.Name == sel})
			}
		}
	}
	return opts
}

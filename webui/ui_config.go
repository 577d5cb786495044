package webui

import (
	"sort"
	"strconv"
	"strings"
)

// The phone page's config view: the generated <mac>.cfg as the admin reads
// it, not as the phone does. The line keys come first, each used key with
// its lines, the unused positions and accounts folded away; every line
// whose value differs from the file the phone last fetched is marked, and
// the differences are listed (secrets masked on both sides).

// configView is the file cut into sections for the page.
type configView struct {
	Head     []configLine // the file's first lines (version, provbox's note)
	Sections []configSection
	Changes  []configChange // current vs fetched, in file order
	Removed  []configChange // settings the fetched file had and this one has not
}

type configSection struct {
	Title  string
	Lines  []configLine
	Folded []configLine // shown under a <details>: unused positions
	Fold   string       // the <summary> of Folded
	Closed bool         // the whole section starts folded (unused accounts)
}

type configLine struct {
	Text    string
	Changed bool
}

type configChange struct {
	Key, Before, After string
}

// buildConfigView cuts the file into sections, shown as masked (plain
// with its secrets masked: maskSecrets), and marks what differs from
// fetched (nil: no copy of what the phone fetched, nothing is marked). A
// changed secret is listed as changed, masked on both sides.
func buildConfigView(plain, masked string, fetched *string) *configView {
	v := &configView{}
	var old map[string]string
	if fetched != nil {
		old = settingsMap(*fetched)
	}
	now := settingsMap(plain)
	plainLines := strings.Split(strings.TrimRight(plain, "\n"), "\n")
	var keys, modules, rest []configSection
	var cur *configSection
	push := func() {
		if cur == nil {
			return
		}
		switch {
		case strings.HasPrefix(cur.Title, "Line keys"):
			keys = append(keys, foldUnusedKeys(*cur))
		case strings.HasPrefix(cur.Title, "Expansion module"):
			modules = append(modules, foldUnusedKeys(*cur))
		default:
			cur.Closed = strings.HasPrefix(cur.Title, "Unused accounts")
			rest = append(rest, *cur)
		}
		cur = nil
	}
	for i, l := range strings.Split(strings.TrimRight(masked, "\n"), "\n") {
		if title, ok := strings.CutPrefix(l, "## "); ok && !strings.HasPrefix(l, "## provbox:") {
			// A header: a new section, unless it only adds a comment to the
			// section just started (two comment lines in a row).
			if cur == nil || len(cur.Lines) > 0 {
				push()
				cur = &configSection{Title: title}
				continue
			}
			cur.Title += " " + title
			continue
		}
		line := configLine{Text: l}
		if k, val, ok := setting(plainLines[i]); ok && old != nil {
			if was, had := old[k]; !had || was != val {
				line.Changed = true
				_, shown, _ := setting(l)
				if shown != val { // a secret: masked both sides
					was = shown
				}
				v.Changes = append(v.Changes, configChange{Key: k, Before: orNone(was, had), After: shown})
			}
		}
		if cur == nil {
			v.Head = append(v.Head, line)
			continue
		}
		cur.Lines = append(cur.Lines, line)
	}
	push()
	for k, was := range old {
		if _, ok := now[k]; !ok {
			if m, _ := maskSecrets(k + " = " + was); m != k+" = "+was {
				was = "********"
			}
			v.Removed = append(v.Removed, configChange{Key: k, Before: was})
		}
	}
	sort.Slice(v.Removed, func(i, j int) bool { return v.Removed[i].Key < v.Removed[j].Key })
	v.Sections = append(append(keys, modules...), rest...)
	return v
}

func orNone(v string, ok bool) string {
	if !ok {
		return "(not set)"
	}
	return v
}

// foldUnusedKeys moves the lines of unused positions (type 0) of a line-key
// or module section under a fold: "21 unused positions".
func foldUnusedKeys(s configSection) configSection {
	out := configSection{Title: s.Title}
	unused := map[string]bool{} // "linekey.5." of a position whose type is 0
	for _, l := range s.Lines {
		if k, val, ok := setting(l.Text); ok && strings.HasSuffix(k, ".type") && val == "0" {
			unused[strings.TrimSuffix(k, "type")] = true
		}
	}
	n := 0
	for _, l := range s.Lines {
		k, _, ok := setting(l.Text)
		prefix := ""
		if ok {
			prefix = k[:strings.LastIndex(k, ".")+1]
		}
		if ok && unused[prefix] {
			if strings.HasSuffix(k, ".type") {
				n++
			}
			out.Folded = append(out.Folded, l)
			continue
		}
		out.Lines = append(out.Lines, l)
	}
	switch n {
	case 0:
	case 1:
		out.Fold = "1 unused position"
	default:
		out.Fold = strconv.Itoa(n) + " unused positions"
	}
	return out
}

// setting splits "key = value" (a comment or blank line is no setting).
func setting(line string) (key, value string, ok bool) {
	if strings.HasPrefix(strings.TrimSpace(line), "#") {
		return "", "", false
	}
	k, val, ok := strings.Cut(line, "=")
	if !ok {
		return "", "", false
	}
	return strings.TrimSpace(k), strings.TrimSpace(val), true
}

// settingsMap reads every setting of a file.
func settingsMap(cfg string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(cfg, "\n") {
		if k, v, ok := setting(l); ok {
			m[k] = v
		}
	}
	return m
}

package main

import (
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/provbox/provbox/appliance"
)

// problemGroup is one ready problem and the phones that have it; serve's
// start-up log and provbox doctor report problems this way, so a problem
// every phone shares (a loopback provisioning URL) is one line, not one per
// phone.
type problemGroup struct {
	Problem string
	Phones  []string // "Front desk (00:15:65:aa:bb:cc)"
}

// groupProblems gathers the phones' ready problems by sentence, the most
// widespread first.
func groupProblems(phones []*appliance.Phone) []problemGroup {
	byProblem := map[string]*problemGroup{}
	var out []*problemGroup
	for _, p := range phones {
		name := p.Title()
		for _, pr := range p.Sync.Problems {
			g := byProblem[pr]
			if g == nil {
				g = &problemGroup{Problem: pr}
				byProblem[pr] = g
				out = append(out, g)
			}
			g.Phones = append(g.Phones, name)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i].Phones) > len(out[j].Phones) })
	groups := make([]problemGroup, len(out))
	for i, g := range out {
		groups[i] = *g
	}
	return groups
}

// phoneList names at most five phones: "A, B and 7 more".
func (g problemGroup) phoneList() string {
	const most = 5
	if len(g.Phones) <= most {
		return strings.Join(g.Phones, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(g.Phones[:most], ", "), len(g.Phones)-most)
}

// logProblems logs each ready problem once, with the phones it affects.
func logProblems(logger *slog.Logger, phones []*appliance.Phone) {
	for _, g := range groupProblems(phones) {
		logger.Warn("phone not ready: "+g.Problem, "phones", len(g.Phones), "which", g.phoneList())
	}
}

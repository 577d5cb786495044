package webui

import (
	"net/http"
	"sort"
	"strconv"

	"github.com/provbox/provbox/appliance"
)

// The dashboard at /: what needs the admin now, each with the link that
// fixes it, and a first-run checklist that ticks itself from the stored
// state (nothing to tick by hand): admin, registrar, first extension, first
// phone, phones can find the box, first phone synced.

// checkStep is one line of the first-run checklist.
type checkStep struct {
	Done       bool
	Title      string
	Detail     string // what is done, or what to do
	Link, Text string // where to do it
}

// attention is one kind of thing that needs the admin, with its phones.
type attention struct {
	ID, Title, Hint string
	Phones          []attentionPhone
	More            int    // phones not listed
	Link, LinkText  string // the page that fixes it, or lists all
}

type attentionPhone struct {
	*appliance.Phone
	Why string
}

type dashboardData struct {
	Phones     int
	States     []stateCount
	Steps      []checkStep
	Done       int
	Attention  []attention
	Discovered int // phones seen but not added
	Unattached int // button configurations on no phone
	// How phones find the box.
	DHCP            string // the interface provbox serves DHCP on; "" off
	PnP             bool
	ProvisioningURL string
	Loopback        bool
}

type stateCount struct {
	State string
	N     int
}

// dashboardList is how many phones an attention card lists.
const dashboardList = 8

func (s *Server) handleDashboardUI(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	set := s.settingsInForce()
	d := &dashboardData{ProvisioningURL: set.ProvisioningURL, Loopback: appliance.IsLoopbackURL(set.ProvisioningURL)}
	d.DHCP = s.dhcpInterface()
	d.PnP = s.PnP != nil && s.PnP()

	phones, err := s.Services.Phones.FindPhones(ctx, appliance.PhoneFilter{})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	exts, err := s.Services.Extensions.FindExtensions(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if _, d.Discovered, err = s.Services.Discovery.PageDiscovered(ctx, 0, 1); err != nil {
		s.fail(w, r, err)
		return
	}
	no := false
	unattached, err := s.Services.Keys.FindKeys(ctx, appliance.KeyFilter{Attached: &no})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d.Unattached = len(unattached)
	d.Phones = len(phones)
	fetched, synced := d.phoneStates(phones)
	user := ""
	if sess := sessionFrom(r); sess != nil {
		user = sess.UserName
	}
	d.checklist(set, user, exts, fetched, synced)
	s.render(w, r, http.StatusOK, "dashboard.html", &page{Title: "Dashboard", Active: "dashboard", Flash: flashOf(w, r), Data: d})
}

// phoneStates counts the phones by sync state and lists those that need
// the admin; it reports whether any phone has fetched its config and
// whether any has reported applying it.
func (d *dashboardData) phoneStates(phones []*appliance.Phone) (fetched, synced bool) {
	counts := map[string]int{}
	var notReady, stuck, unreachable []attentionPhone
	for _, ph := range phones {
		counts[ph.Sync.StateText()]++
		if len(ph.Sync.Problems) > 0 {
			notReady = append(notReady, attentionPhone{ph, ph.Sync.Problems[0]})
		}
		switch ph.Sync.State {
		case appliance.SyncStuck:
			stuck = append(stuck, attentionPhone{ph, "told to fetch a change; no fetch or report came back"})
		case appliance.SyncUnreachable:
			unreachable = append(unreachable, attentionPhone{ph, "no answer to " + ph.Sync.LastNotifyResult})
		}
		fetched = fetched || ph.Sync.HasFetched()
		synced = synced || ph.Sync.State == appliance.SyncSynced // the handset itself reported
	}
	for _, st := range []string{appliance.SyncSynced, "fetched (phone does not confirm)", appliance.SyncFetched, appliance.SyncNotified,
		appliance.SyncPending, appliance.SyncNew, appliance.SyncUnreachable, appliance.SyncStuck} {
		if counts[st] > 0 {
			d.States = append(d.States, stateCount{st, counts[st]})
		}
	}
	d.card("not-ready", nPhrase(len(notReady), "phone is", "phones are")+" not ready",
		"Each cannot register or provision as configured until this is fixed; the first reason is shown, the phone's page lists them all.",
		"/phones?state=not_ready", "All phones not ready", notReady)
	d.card("stuck", nPhrase(len(stuck), "phone is", "phones are")+" stuck",
		"Told to fetch a change, and nothing came back within sip.report_timeout. Check that the phone is on and can reach provbox, then Resync.",
		"/phones?state=stuck", "All stuck phones", stuck)
	d.card("unreachable", nPhrase(len(unreachable), "phone does", "phones do")+" not answer",
		"provbox told them to fetch a change and got no answer: the phone may be off, or its address may have changed (it is learned again when it fetches or boots).",
		"/phones?state=unreachable", "All unreachable phones", unreachable)
	return fetched, synced
}

// card adds an attention card listing the first dashboardList of list, by
// name; none when list is empty.
func (d *dashboardData) card(id, title, hint, link, text string, list []attentionPhone) {
	if len(list) == 0 {
		return
	}
	sort.SliceStable(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	a := attention{ID: id, Title: title, Hint: hint, Link: link, LinkText: text}
	if len(list) > dashboardList {
		a.More, list = len(list)-dashboardList, list[:dashboardList]
	}
	a.Phones = list
	d.Attention = append(d.Attention, a)
}

// step adds one step of the getting-started checklist.
func (d *dashboardData) step(done bool, title, detail, link, text string) {
	d.Steps = append(d.Steps, checkStep{Done: done, Title: title, Detail: detail, Link: link, Text: text})
	if done {
		d.Done++
	}
}

// checklist ticks the getting-started steps from what is stored: the
// admin (user, logged in), the registrar, the first extension, the first
// phone, whether phones can find provbox and the first phone synced.
func (d *dashboardData) checklist(set appliance.Settings, user string, exts []*appliance.Extension, fetched, synced bool) {
	registrar := set.Registrar != ""
	if !registrar && len(exts) > 0 {
		registrar = true
		for _, e := range exts {
			registrar = registrar && e.SIPServer != ""
		}
	}
	d.step(true, "Admin created", "you are logged in as "+user+"; add more admins under Users", "/users", "Users")
	regDetail := "the SIP server (your PBX) phones register with: set it once in Settings, or on each extension"
	if set.Registrar != "" {
		regDetail = "phones register with " + set.Registrar
	} else if registrar {
		regDetail = "every extension names its SIP server"
	}
	d.step(registrar, "Registrar set", regDetail, "/settings", "Settings")
	extDetail := "an extension is a user's number and SIP password at the PBX"
	if len(exts) > 0 {
		extDetail = nPhrase(len(exts), "extension", "extensions")
	}
	d.step(len(exts) > 0, "First extension", extDetail, "/extensions", "Extensions")
	phoneDetail := "add a phone by its MAC address and model, with an extension on its first line keys"
	if d.Discovered > 0 {
		phoneDetail = nPhrase(d.Discovered, "phone has", "phones have") + " asked provbox for a config: adopt one under Discovered"
	}
	if d.Phones > 0 {
		phoneDetail = nPhrase(d.Phones, "phone", "phones")
	}
	phoneLink, phoneText := "/phones/new", "Add phone"
	if d.Discovered > 0 && d.Phones == 0 {
		phoneLink, phoneText = "/discovered", "Discovered"
	}
	d.step(d.Phones > 0, "First phone", phoneDetail, phoneLink, phoneText)
	var find string
	switch {
	case d.DHCP != "":
		find = "provbox hands out addresses on " + d.DHCP + " with option 66"
	case d.PnP:
		find = "SIP plug-and-play answers phones on this network"
	case fetched:
		find = "a phone has fetched its config from provbox"
	default:
		find = "set option 66 on your router (below), or turn on DHCP or plug-and-play"
	}
	if d.DHCP != "" && d.PnP {
		find += ", and SIP plug-and-play answers"
	}
	d.step(d.DHCP != "" || d.PnP || fetched, "Phones can find provbox", find, "#find", "How phones find provbox")
	syncDetail := "a phone fetched its config and reported that it applied it"
	if !synced {
		syncDetail = "power on (or reboot) a phone: it fetches its config and reports back"
	}
	d.step(synced, "First phone synced", syncDetail, "/phones", "Phones")
}

// nPhrase is "1 phone" or "3 phones".
func nPhrase(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

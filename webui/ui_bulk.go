package webui

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/provbox/provbox/appliance"
)

// Bulk actions on the phones ticked in the Phones list (POST /phones/bulk,
// field "mac" once per phone, "action" one of resync, location, copy,
// delete): each one transaction, all or nothing. Delete asks first, on a
// page naming the phones; the others act at once and say what they did.

type bulkDeleteData struct {
	Phones []*appliance.Phone
}

func (s *Server) handleBulkUI(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	f := r.PostForm
	back := f.Get("back")
	if back == "" || !strings.HasPrefix(back, "/phones") || safeNext(back) != back {
		back = "/phones"
	}
	var phones []*appliance.Phone
	seen := map[string]bool{}
	for _, m := range f["mac"] {
		ph, err := s.Services.Phones.FindPhone(ctx, m)
		if err != nil {
			if c := appliance.ErrorCode(err); c == appliance.ENOTFOUND || c == appliance.EINVALID {
				redirectBack(w, r, back, "Nothing done: "+appliance.ErrorMessage(err)+" (deleted meanwhile?).")
				return
			}
			s.fail(w, r, err)
			return
		}
		if !seen[ph.MAC] {
			seen[ph.MAC] = true
			phones = append(phones, ph)
		}
	}
	if len(phones) == 0 {
		redirectBack(w, r, back, "Nothing done: tick the phones first (the boxes in the first column).")
		return
	}
	macs := make([]string, len(phones))
	for i, ph := range phones {
		macs[i] = ph.MAC
	}
	switch f.Get("action") {
	case "resync":
		s.bulkResync(w, r, back, phones)
	case "location":
		loc, err := formLocation(f)
		if err != nil {
			redirectBack(w, r, back, "Nothing done: "+appliance.ErrorMessage(err)+".")
			return
		}
		if _, err := s.Services.Phones.UpdatePhones(ctx, macs, appliance.PhoneUpdate{LocationID: &loc}); err != nil {
			s.bulkError(w, r, back, err)
			return
		}
		where := "no location"
		if loc > 0 {
			if l, err := s.Services.Locations.FindLocation(ctx, loc); err == nil {
				where = "location " + l.Name
			}
		}
		redirectBack(w, r, back, nPhrase(len(phones), "phone is", "phones are")+" now at "+where+": "+titles(phones)+".")
	case "copy":
		from := f.Get("from")
		if from == "" {
			redirectBack(w, r, back, "Nothing done: choose the phone whose line keys to copy.")
			return
		}
		src, err := s.Services.Phones.FindPhone(ctx, from)
		if err != nil {
			s.bulkError(w, r, back, err)
			return
		}
		layout, err := s.Services.Phones.FindLayout(ctx, src.MAC)
		if err != nil {
			s.bulkError(w, r, back, err)
			return
		}
		for i := range layout {
			layout[i] = appliance.LayoutEntry{Module: layout[i].Module, Position: layout[i].Position, KeyID: layout[i].KeyID}
		}
		var targets []*appliance.Phone
		var tmacs []string
		for _, ph := range phones {
			if ph.MAC != src.MAC {
				targets, tmacs = append(targets, ph), append(tmacs, ph.MAC)
			}
		}
		if len(targets) == 0 {
			redirectBack(w, r, back, "Nothing done: the only phone ticked is the one to copy from.")
			return
		}
		if _, err := s.Services.Phones.UpdatePhones(ctx, tmacs, appliance.PhoneUpdate{Layout: &layout}); err != nil {
			s.bulkError(w, r, back, err)
			return
		}
		redirectBack(w, r, back, "Line keys of "+src.Title()+" copied to "+nPhrase(len(targets), "phone", "phones")+": "+titles(targets)+
			". They are being told to fetch them — watch their sync badges.")
	case "delete":
		if f.Get("confirm") != "yes" {
			s.render(w, r, http.StatusOK, "phones_delete.html", &page{Title: "Delete phones", Active: "phones",
				Form: f, Data: &bulkDeleteData{Phones: phones}})
			return
		}
		if err := s.Services.Phones.DeletePhones(ctx, macs); err != nil {
			s.bulkError(w, r, back, err)
			return
		}
		redirectBack(w, r, back, nPhrase(len(phones), "phone", "phones")+" deleted: "+titles(phones)+
			". The handsets keep their last config until they are reset; if one asks for its config again it shows under Discovered.")
	default:
		redirectBack(w, r, back, "Nothing done: choose an action.")
	}
}

// bulkResync tells the ticked phones that have fetched before to sync now;
// one that never fetched gets its config when it boots (a factory phone
// reboots on check-sync), so it is named and skipped.
func (s *Server) bulkResync(w http.ResponseWriter, r *http.Request, back string, phones []*appliance.Phone) {
	if s.Services.Sync == nil {
		redirectBack(w, r, back, "Resync is not available on this server.")
		return
	}
	var sent, never []*appliance.Phone
	for _, ph := range phones {
		if ph.Sync.HasFetched() {
			sent = append(sent, ph)
		} else {
			never = append(never, ph)
		}
	}
	msg := ""
	if len(sent) > 0 {
		macs := make([]string, len(sent))
		for i, ph := range sent {
			macs[i] = ph.MAC
		}
		if err := s.Services.Sync.Resync(r.Context(), macs); err != nil {
			s.bulkError(w, r, back, err)
			return
		}
		msg = "Resync sent to " + nPhrase(len(sent), "phone", "phones") + ": " + titles(sent) + "; they fetch their config again now — watch their sync badges."
	}
	if len(never) > 0 {
		msg += " Not sent to " + titles(never) + ": never fetched a config (a phone fetches its first one when it boots and finds provbox)."
	}
	redirectBack(w, r, back, strings.TrimSpace(msg))
}

// bulkError reports a domain error of a bulk action as the flash: nothing
// was changed (one transaction).
func (s *Server) bulkError(w http.ResponseWriter, r *http.Request, back string, err error) {
	if statusFor(err) == http.StatusInternalServerError {
		s.fail(w, r, err)
		return
	}
	redirectBack(w, r, back, "Nothing changed: "+appliance.ErrorMessage(err))
}

// titles names phones for a message: "Front desk (00:15:65:…), Lobby (…)",
// the first 10 and how many more.
func titles(phones []*appliance.Phone) string {
	var names []string
	for i, ph := range phones {
		if i == 10 {
			names = append(names, "and "+strconv.Itoa(len(phones)-10)+" more")
			break
		}
		names = append(names, ph.Title())
	}
	return strings.Join(names, ", ")
}

package sqlite_test

import (
	"context"
	"github.com/provbox/provbox/configs"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/provbox/provbox/appliance"
	"github.com/provbox/provbox/appliance/sqlite"
)

// clockDB opens a store whose clock the test moves.
func clockDB(t *testing.T) (*sqlite.DB, func(time.Duration)) {
	t.Helper()
	var mu sync.Mutex
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	db := sqlite.NewDB(filepath.Join(t.TempDir(), "provbox.db"), configs.MustCatalog(), appliance.HashConfig)
	db.Events = appliance.NewEventBus(nil)
	db.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
}

// TestSync_ReportsMakeSynced walks a phone that reports through SPEC §6:
// fetched → synced only on its report, registration per account, a
// report that does not come making it stuck, and its timeline.
func TestSync_ReportsMakeSynced(t *testing.T) {
	ctx := context.Background()
	db, advance := clockDB(t)
	svc := db.Services()
	alice := mustExt(t, svc, "1001", "Alice")
	mustExt(t, svc, "1002", "Bob")
	p := mustPhone(t, svc, "001565000001", "T46G", "1001")
	sync := func() appliance.SyncStatus {
		t.Helper()
		p, err := svc.Phones.FindPhone(ctx, p.MAC)
		if err != nil {
			t.Fatal(err)
		}
		return p.Sync
	}
	report := func(event, user string) error {
		return svc.Sync.RecordReport(ctx, appliance.Report{Token: p.Token, Event: event, IP: "10.0.0.7", MAC: p.MAC, User: user})
	}
	fetch := func() {
		t.Helper()
		if err := svc.Sync.RecordFetch(ctx, appliance.Fetch{MAC: p.MAC, Version: sync().ConfigVersion, IP: "10.0.0.7", Auth: appliance.AuthSecret}); err != nil {
			t.Fatal(err)
		}
	}
	if p.Token == "" || len(p.Token) < 20 {
		t.Fatalf("token %q", p.Token)
	}

	// Wrong tokens, events and MACs change nothing.
	for _, bad := range []appliance.Report{
		{Token: "nope", Event: appliance.ReportProvisioned},
		{Token: p.Token, Event: "rebooted"},
		{Token: p.Token, Event: appliance.ReportProvisioned, MAC: "001565000002"},
		{Token: p.Token, Event: appliance.ReportProvisioned, MAC: "garbage"},
		{Token: "", Event: appliance.ReportProvisioned},
	} {
		wantErr(t, svc.Sync.RecordReport(ctx, bad), appliance.ENOTFOUND, "token")
	}
	if s := sync(); s.Confirms || s.LastReportAt != nil || s.SIPAddress != "" {
		t.Fatalf("a refused report changed the phone: %+v", s)
	}

	// A report before any fetch: the phone confirms, but is not synced.
	if err := report(appliance.ReportProvisioned, ""); err != nil {
		t.Fatal(err)
	}
	if s := sync(); s.State != appliance.SyncNew || !s.Confirms || s.SIPAddress != "10.0.0.7:5060" {
		t.Fatalf("report before fetch: %+v", s)
	}
	fetch()
	if s := sync(); s.State != appliance.SyncFetched || s.StateText() != "fetched" {
		t.Fatalf("fetch: %+v", s)
	}
	advance(time.Second)
	if err := report(appliance.ReportProvisioned, ""); err != nil {
		t.Fatal(err)
	}
	if s := sync(); s.State != appliance.SyncSynced || s.AppliedAt == nil {
		t.Fatalf("report after fetch: %+v", s)
	}
	for _, tc := range []struct {
		event, user string
		want        map[string]string
	}{
		{appliance.ReportRegistered, "1001", map[string]string{"1": "registered"}},
		{appliance.ReportRegisterFail, "1001", map[string]string{"1": "failed"}},
		{appliance.ReportRegistered, "", map[string]string{"1": "registered"}}, // one account: no user needed
		{appliance.ReportRegisterFail, "1001", map[string]string{"1": "failed"}},
		{appliance.ReportRegistered, "9999", map[string]string{"1": "failed"}}, // no such account: nothing changes
		{appliance.ReportUnregistered, "1001", map[string]string{"1": "unknown"}},
		{appliance.ReportRegistered, "1001", map[string]string{"1": "registered"}},
	} {
		if err := report(tc.event, tc.user); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for k, r := range sync().Registration {
			got[k] = r.State
		}
		if len(got) != len(tc.want) || got["1"] != tc.want["1"] {
			t.Fatalf("%s %q: registration %v, want %v", tc.event, tc.user, got, tc.want)
		}
	}

	// An edit the phone applies without a word (a name, a line key): no
	// report is awaited, it is never stuck.
	name := "Desk"
	if _, err := svc.Phones.UpdatePhone(ctx, p.MAC, appliance.PhoneUpdate{Name: &name}); err != nil {
		t.Fatal(err)
	}
	if s := sync(); s.State != appliance.SyncPending {
		t.Fatalf("edit: %+v", s)
	}
	svc.Sync.RecordNotify(ctx, appliance.NotifyResult{MAC: p.MAC, Version: sync().ConfigVersion, Status: 200, Reason: "OK"})
	if s := sync(); s.State != appliance.SyncNotified {
		t.Fatalf("notify: %+v", s)
	}
	fetch()
	advance(2 * appliance.StuckAfter)
	if macs, err := svc.Sync.MarkStuck(ctx); err != nil || len(macs) != 0 || sync().State != appliance.SyncFetched {
		t.Fatalf("a change without a report made it stuck: %v %v %+v", macs, err, sync())
	}

	// Told, but never fetched: stuck.
	pw := "new-password"
	if _, err := svc.Extensions.UpdateExtension(ctx, alice.ID, appliance.ExtensionUpdate{Password: &pw}); err != nil {
		t.Fatal(err)
	}
	v2 := sync().ConfigVersion
	svc.Sync.RecordNotify(ctx, appliance.NotifyResult{MAC: p.MAC, Version: v2, Status: 200, Reason: "OK"})
	advance(appliance.StuckAfter + time.Second)
	if macs, _ := svc.Sync.MarkStuck(ctx); len(macs) != 1 || sync().State != appliance.SyncStuck {
		t.Fatalf("notified, no fetch: %v %+v", macs, sync())
	}
	// It fetches the account change at last: its registration report is
	// awaited.
	fetch()
	if s := sync(); s.State != appliance.SyncFetched {
		t.Fatalf("fetch after stuck: %+v", s)
	}
	advance(appliance.StuckAfter - time.Millisecond)
	if macs, err := svc.Sync.MarkStuck(ctx); err != nil || len(macs) != 0 {
		t.Fatalf("stuck too early: %v %v", macs, err)
	}
	advance(time.Second)
	if macs, err := svc.Sync.MarkStuck(ctx); err != nil || len(macs) != 1 || sync().State != appliance.SyncStuck {
		t.Fatalf("account change without a report not stuck: %v %v %+v", macs, err, sync())
	}
	// The late report still counts.
	advance(time.Second)
	if err := report(appliance.ReportRegistered, "1001"); err != nil {
		t.Fatal(err)
	}
	if s := sync(); s.State != appliance.SyncSynced || s.Registration["1"].State != "registered" {
		t.Fatalf("late report: %+v", s)
	}

	tl, err := svc.Sync.Timeline(ctx, p.MAC)
	if err != nil || len(tl) < 2 {
		t.Fatalf("timeline %+v %v", tl, err)
	}
	c := tl[0]
	if c.Version != v2 || c.TriggeredAt == nil || c.Trigger != "check-sync: 200 OK" || c.FetchedAt == nil || c.AppliedAt == nil ||
		c.RegisteredAt == nil || c.Outcome != "" {
		t.Fatalf("newest change %+v", c)
	}
	if c.ChangedAt.After(*c.TriggeredAt) || c.FetchedAt.Before(*c.TriggeredAt) || !c.AppliedAt.After(*c.FetchedAt) {
		t.Fatalf("steps out of order %+v", c)
	}
	if tl[1].FetchedAt == nil || tl[1].AppliedAt != nil || len(tl) != 3 || tl[2].AppliedAt == nil {
		t.Fatalf("earlier changes %+v", tl)
	}
	counts, err := svc.Sync.CountStates(ctx)
	if err != nil || counts["synced"] != 1 || counts["stuck"] != 0 || len(counts) != len(appliance.SyncStates) {
		t.Fatalf("counts %v %v", counts, err)
	}
}

// TestSync_NonReportingPhoneNeverStuck: a phone whose firmware never
// reports stays "fetched (phone does not confirm)".
func TestSync_NonReportingPhoneNeverStuck(t *testing.T) {
	ctx := context.Background()
	db, advance := clockDB(t)
	svc := db.Services()
	mustExt(t, svc, "1001", "Alice")
	p := mustPhone(t, svc, "001565000001", "T46G", "1001")
	svc.Sync.RecordFetch(ctx, appliance.Fetch{MAC: p.MAC, Version: p.Sync.ConfigVersion, IP: "10.0.0.7"})
	svc.Sync.RecordNotify(ctx, appliance.NotifyResult{MAC: p.MAC, Version: p.Sync.ConfigVersion, Status: 200, Reason: "OK"})
	advance(2 * appliance.StuckAfter)
	if macs, _ := svc.Sync.MarkStuck(ctx); len(macs) != 0 {
		t.Fatalf("stuck: %v", macs)
	}
	got, _ := svc.Phones.FindPhone(ctx, p.MAC)
	if got.Sync.StateText() != "fetched (phone does not confirm)" || !got.Sync.Settled() {
		t.Fatalf("%+v", got.Sync)
	}
}

// TestSync_TokenRotatesWithSecret: the previous token reports until the
// phone fetches with its new secret.
func TestSync_TokenRotatesWithSecret(t *testing.T) {
	ctx := context.Background()
	db, _ := clockDB(t)
	svc := db.Services()
	p := mustPhone(t, svc, "001565000001", "T46G", "")
	old := p.Token
	p, err := svc.Phones.RotateSecret(ctx, p.MAC)
	if err != nil || p.Token == old || p.PrevToken != old {
		t.Fatalf("rotate: %+v %v", p, err)
	}
	if err := svc.Sync.RecordReport(ctx, appliance.Report{Token: old, Event: appliance.ReportIPChanged, IP: "10.0.0.8"}); err != nil {
		t.Fatal(err)
	}
	svc.Sync.RecordFetch(ctx, appliance.Fetch{MAC: p.MAC, Version: p.Sync.ConfigVersion, Auth: appliance.AuthSecret})
	wantErr(t, svc.Sync.RecordReport(ctx, appliance.Report{Token: old, Event: appliance.ReportIPChanged}), appliance.ENOTFOUND, "token")
	if err := svc.Sync.RecordReport(ctx, appliance.Report{Token: p.Token, Event: appliance.ReportIPChanged, IP: "10.0.0.9"}); err != nil {
		t.Fatal(err)
	}
	// The report before the first fetch taught the address; the one after
	// does not move it (a token may not redirect a provisioned phone).
	got, _ := svc.Phones.FindPhone(ctx, p.MAC)
	if got.Sync.SIPAddress != "10.0.0.8:5060" {
		t.Fatalf("address %q", got.Sync.SIPAddress)
	}
}

// TestSync_Target: the sync loop's one read of a phone.
func TestSync_Target(t *testing.T) {
	ctx := context.Background()
	db, _ := clockDB(t)
	svc := db.Services()
	mustExt(t, svc, "1001", "Alice")
	mustExt(t, svc, "1002", "Bob")
	p := mustPhone(t, svc, "001565000001", "T46G", "1002")
	got, err := svc.Sync.Target(ctx, "00:15:65:00:00:01")
	if err != nil || got.MAC != p.MAC || got.User != "1002" || got.HasFetched || !got.Changed() || got.SIPAddress != "" || got.State != appliance.SyncNew {
		t.Fatalf("%+v %v", got, err)
	}
	svc.Sync.RecordFetch(ctx, appliance.Fetch{MAC: p.MAC, Version: got.ConfigVersion, IP: "10.0.0.7"})
	got, _ = svc.Sync.Target(ctx, p.MAC)
	if !got.HasFetched || got.Changed() || got.SIPAddress != "10.0.0.7:5060" || got.State != appliance.SyncFetched {
		t.Fatalf("after fetch %+v", got)
	}
	bare := mustPhone(t, svc, "001565000002", "T46G", "")
	if got, _ := svc.Sync.Target(ctx, bare.MAC); got.User != "" {
		t.Fatalf("no account: %+v", got)
	}
	_, err = svc.Sync.Target(ctx, "001565000099")
	wantErr(t, err, appliance.ENOTFOUND, "mac")
}

// TestSync_FetchBeforeNotifyAnswer: a phone that fetched before its
// trigger's answer was recorded is not waited for (never stuck for it).
func TestSync_FetchBeforeNotifyAnswer(t *testing.T) {
	ctx := context.Background()
	db, advance := clockDB(t)
	svc := db.Services()
	mustExt(t, svc, "1001", "Alice")
	p := mustPhone(t, svc, "001565000001", "T46G", "1001")
	svc.Sync.RecordFetch(ctx, appliance.Fetch{MAC: p.MAC, Version: p.Sync.ConfigVersion, IP: "10.0.0.7"})
	svc.Sync.RecordReport(ctx, appliance.Report{Token: p.Token, Event: appliance.ReportProvisioned})
	name := "Desk"
	svc.Phones.UpdatePhone(ctx, p.MAC, appliance.PhoneUpdate{Name: &name})
	got, _ := svc.Phones.FindPhone(ctx, p.MAC)
	v := got.Sync.ConfigVersion
	svc.Sync.RecordFetch(ctx, appliance.Fetch{MAC: p.MAC, Version: v, IP: "10.0.0.7"})
	svc.Sync.RecordNotify(ctx, appliance.NotifyResult{MAC: p.MAC, Version: v, Status: 200, Reason: "OK"})
	advance(2 * appliance.StuckAfter)
	if macs, _ := svc.Sync.MarkStuck(ctx); len(macs) != 0 {
		t.Fatalf("stuck after fetching before the answer: %v", macs)
	}
	if got, _ := svc.Phones.FindPhone(ctx, p.MAC); got.Sync.State != appliance.SyncFetched {
		t.Fatalf("%+v", got.Sync)
	}
}

// TestSync_AwaitedReports: which fetches await a report (review findings):
// fetching again what was fetched keeps the awaited report; a fetch of an
// older version makes the accounts the phone holds unknown, so no report
// is awaited for the next one.
func TestSync_AwaitedReports(t *testing.T) {
	ctx := context.Background()
	db, advance := clockDB(t)
	svc := db.Services()
	alice := mustExt(t, svc, "1001", "Alice")
	p := mustPhone(t, svc, "001565000001", "T46G", "1001")
	cur := func() appliance.SyncStatus {
		got, _ := svc.Phones.FindPhone(ctx, p.MAC)
		return got.Sync
	}
	fetch := func(v string) {
		t.Helper()
		if err := svc.Sync.RecordFetch(ctx, appliance.Fetch{MAC: p.MAC, Version: v, IP: "10.0.0.7"}); err != nil {
			t.Fatal(err)
		}
	}
	setPassword := func(pw string) string {
		t.Helper()
		if _, err := svc.Extensions.UpdateExtension(ctx, alice.ID, appliance.ExtensionUpdate{Password: &pw}); err != nil {
			t.Fatal(err)
		}
		return cur().ConfigVersion
	}
	fetch(cur().ConfigVersion)
	svc.Sync.RecordReport(ctx, appliance.Report{Token: p.Token, Event: appliance.ReportProvisioned})

	// An account change fetched twice: the second fetch keeps the report awaited.
	v2 := setPassword("pw-2")
	fetch(v2)
	fetch(v2)
	advance(appliance.StuckAfter + time.Second)
	if macs, _ := svc.Sync.MarkStuck(ctx); len(macs) != 1 {
		t.Fatalf("a second fetch cancelled the awaited report: %+v", cur())
	}
	// Fetching it once more leaves it stuck; the report makes it synced.
	fetch(v2)
	if s := cur(); s.State != appliance.SyncStuck {
		t.Fatalf("re-fetch of a stuck phone: %+v", s)
	}
	svc.Sync.RecordReport(ctx, appliance.Report{Token: p.Token, Event: appliance.ReportRegistered, User: "1001"})
	if s := cur(); s.State != appliance.SyncSynced {
		t.Fatalf("%+v", s)
	}

	// An account change (v3) raced by a name edit (v4): the phone fetched v3,
	// re-registered for it, and is then told about v4, which changes no
	// account. Which accounts it holds is unknown after the v3 fetch, so no
	// report is awaited for v4: fetched, never stuck.
	v3 := setPassword("pw-3")
	name := "Desk"
	svc.Phones.UpdatePhone(ctx, p.MAC, appliance.PhoneUpdate{Name: &name})
	fetch(v3)
	svc.Sync.RecordReport(ctx, appliance.Report{Token: p.Token, Event: appliance.ReportRegistered, User: "1001"})
	fetch(cur().ConfigVersion)
	advance(2 * appliance.StuckAfter)
	if macs, _ := svc.Sync.MarkStuck(ctx); len(macs) != 0 || cur().State != appliance.SyncFetched {
		t.Fatalf("raced account change: %v %+v", macs, cur())
	}
	tl, _ := svc.Sync.Timeline(ctx, p.MAC)
	for _, c := range tl {
		if c.RegisteredAt != nil && (c.FetchedAt == nil || c.RegisteredAt.Before(*c.FetchedAt)) {
			t.Fatalf("a registration before its fetch: %+v", c)
		}
	}
}

// TestSync_OutcomeOnlyWhenWaiting: no answer to a resync of a phone that
// holds its config leaves it as it was, without an "unreachable" badge on
// its change; an answer clears an earlier one.
func TestSync_OutcomeOnlyWhenWaiting(t *testing.T) {
	ctx := context.Background()
	db, _ := clockDB(t)
	svc := db.Services()
	mustExt(t, svc, "1001", "Alice")
	p := mustPhone(t, svc, "001565000001", "T46G", "1001")
	svc.Sync.RecordFetch(ctx, appliance.Fetch{MAC: p.MAC, Version: p.Sync.ConfigVersion, IP: "10.0.0.7"})
	svc.Sync.RecordNotify(ctx, appliance.NotifyResult{MAC: p.MAC, Version: p.Sync.ConfigVersion})
	tl, _ := svc.Sync.Timeline(ctx, p.MAC)
	if got, _ := svc.Phones.FindPhone(ctx, p.MAC); got.Sync.State != appliance.SyncFetched || tl[0].Outcome != "" {
		t.Fatalf("%+v %+v", got.Sync, tl[0])
	}
	name := "Desk"
	svc.Phones.UpdatePhone(ctx, p.MAC, appliance.PhoneUpdate{Name: &name})
	got, _ := svc.Phones.FindPhone(ctx, p.MAC)
	svc.Sync.RecordNotify(ctx, appliance.NotifyResult{MAC: p.MAC, Version: got.Sync.ConfigVersion})
	if tl, _ = svc.Sync.Timeline(ctx, p.MAC); tl[0].Outcome != "unreachable" {
		t.Fatalf("%+v", tl[0])
	}
	svc.Sync.RecordNotify(ctx, appliance.NotifyResult{MAC: p.MAC, Version: got.Sync.ConfigVersion, Status: 200, Reason: "OK"})
	if tl, _ = svc.Sync.Timeline(ctx, p.MAC); tl[0].Outcome != "" || tl[0].Trigger != "check-sync: 200 OK" {
		t.Fatalf("%+v", tl[0])
	}
}

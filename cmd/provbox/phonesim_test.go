package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/provbox/provbox/appliance"
)

// TestPhonesimFiftyPhonesSync: 50 emulated phones boot from provbox like
// factory phones (their one claim-window fetch over plain HTTP); one edit of
// a key on all of them sends each a check-sync, each re-fetches over HTTPS
// with its own secret and provbox's CA, and every phone ends synced with
// the new version.
func TestPhonesimFiftyPhonesSync(t *testing.T) {
	const n = 50
	sim := filepath.Join(t.TempDir(), "phonesim")
	if out, err := exec.Command("go", "build", "-o", sim, "../phonesim").CombinedOutput(); err != nil {
		t.Fatalf("build phonesim: %v\n%s", err, out)
	}
	phonePort := freeUDPPort(t, "127.1.0.1")
	srv, a, _, _ := sipProvbox(t, phonePort)

	var csv strings.Builder
	csv.WriteString("mac,model,position,key_type,key_value,key_label\n")
	for i := 0; i < n; i++ {
		mac := fmt.Sprintf("001565b000%02x", i)
		fmt.Fprintf(&csv, "%s,T46G,1,account,1001,\n%s,,2,blf,1002,Bob\n", mac, mac)
	}
	a.must("POST", "/api/v1/phones.csv", []byte(csv.String()), 200, nil)

	cmd := exec.Command(sim, "-n", strconv.Itoa(n), "-first-mac", "001565b00000", "-ip-base", "127.1.0.1",
		"-sip-port", strconv.Itoa(phonePort), "-prov", srv.url+"/prov/")
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	type line struct {
		Event, MAC, ETag string
		OK, Failed       int
		Notifies         int
		URL, Auth        string
		TLS              bool
	}
	var mu sync.Mutex
	var lines []line
	booted := make(chan line, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var l line
			if json.Unmarshal(sc.Bytes(), &l) != nil {
				continue
			}
			mu.Lock()
			lines = append(lines, l)
			mu.Unlock()
			if l.Event == "booted" {
				booted <- l
			}
		}
	}()
	select {
	case b := <-booted:
		if b.OK != n || b.Failed != 0 {
			t.Fatalf("boot: %+v\n%s", b, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("phonesim did not boot:\n%s", stderr.String())
	}
	phones := func() []appliance.Phone {
		var ps []appliance.Phone
		a.must("GET", "/api/v1/phones", nil, 200, &ps)
		return ps
	}
	for _, p := range phones() {
		if p.Sync.State != appliance.SyncSynced {
			t.Fatalf("after boot %s: %+v", p.MAC, p.Sync)
		}
	}

	var keys []appliance.Key
	a.must("GET", "/api/v1/keys?type=blf", nil, 200, &keys)
	edit := time.Now()
	a.must("PATCH", fmt.Sprintf("/api/v1/keys/%d", keys[0].ID), map[string]any{"label": "Robert"}, 200, nil)
	var synced int
	for time.Since(edit) < 20*time.Second {
		synced = 0
		for _, p := range phones() {
			if p.Sync.State == appliance.SyncSynced && p.Sync.FetchedVersion == p.Sync.ConfigVersion && p.Sync.LastNotifyResult == "200 OK" {
				synced++
			}
		}
		if synced == n {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if synced != n {
		t.Fatalf("%d of %d phones synced after the edit", synced, n)
	}
	t.Logf("one edit → %d phones notified, re-fetched and synced in %v", n, time.Since(edit))
	cmd.Process.Signal(syscall.SIGTERM)
	<-done
	cmd.Wait()
	mu.Lock()
	defer mu.Unlock()
	notifies := map[string]int{}
	versions := map[string]string{}
	for _, p := range phones() {
		versions[p.MAC] = p.Sync.ConfigVersion
	}
	for _, l := range lines {
		switch l.Event {
		case "notify":
			notifies[l.MAC]++
		case "boot":
			// A factory phone: its first config over plain HTTP, no secret.
			if l.Auth != "none" || l.TLS || !strings.HasPrefix(l.URL, "http://") {
				t.Errorf("%s booted with %+v", l.MAC, l)
			}
		case "fetch":
			if l.ETag != `"`+versions[l.MAC]+`"` {
				t.Errorf("%s re-fetched ETag %s, current version %s", l.MAC, l.ETag, versions[l.MAC])
			}
			// Then with the secret from that config, over HTTPS verified
			// with the CA it installed.
			if l.Auth != "basic" || !l.TLS || !strings.HasPrefix(l.URL, srv.https+"/prov/") {
				t.Errorf("%s re-fetched with %+v (https %s)", l.MAC, l, srv.https)
			}
		}
	}
	for mac, c := range notifies {
		if c != 1 {
			t.Errorf("%s got %d check-syncs for one edit", mac, c)
		}
	}
	if len(notifies) != n {
		t.Errorf("%d phones notified, want %d", len(notifies), n)
	}
}

package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// everyKeyChanged is a config that differs from DefaultConfig in every key.
func everyKeyChanged() Config {
	return Config{
		DataDir: "/srv/provbox", LogLevel: "debug",
		HTTP:         HTTPConfig{Listen: ":8081", PublicURL: "http://x.test/prov/"},
		TFTP:         TFTPConfig{Listen: "off"},
		SIP:          SIPConfig{Listen: ":5062", Registrar: "pbx.test", PhonePort: 5070, NotifyRate: 9, PnP: false, PnPInterface: "eth1", PickupPrefix: "*8"},
		AllowedHosts: []string{"provbox.office.lan"},
		HTTPS:        HTTPSConfig{Listen: ":8444", CertFile: "/etc/provbox/cert.pem", KeyFile: "/etc/provbox/key.pem"},
		Provisioning: ProvisioningConfig{Username: "u", Password: "p", MissLimit: 3, PhoneAdminPassword: "phones-admin-pw", ClaimWindow: "2h", Open: true},
		DHCP:         DHCPConfig{Interface: "eth0", RangeStart: "10.0.0.10", RangeEnd: "10.0.0.99", Netmask: "255.255.255.0", Router: "10.0.0.1", DNS: []string{"10.0.0.1"}, NTP: []string{"10.0.0.1"}, LeaseTime: "1h", PhonesOnly: true, AllowOtherServers: true, Option66: "tftp"},
	}
}

// TestDiffConfig: every key is either applied by a reload or named as
// needing a restart, and the config a reload leaves in force holds the
// running value of exactly the restart keys.
func TestDiffConfig(t *testing.T) {
	running, next := DefaultConfig(), everyKeyChanged()
	a, b := configValues(&running), configValues(&next)
	for k := range b {
		if a[k] == b[k] {
			t.Fatalf("everyKeyChanged leaves %s unchanged: change every key", k)
		}
	}

	applied, restart := diffConfig(&running, &next, "")
	if len(applied)+len(restart) != len(b) {
		t.Fatalf("%d applied + %d restart != %d keys", len(applied), len(restart), len(b))
	}
	// The sockets, the state directory, and every [dhcp] key (more may come).
	wantRestart := []string{"allowed_hosts", "data_dir", "http.listen", "https.cert_file", "https.key_file", "https.listen", "sip.action_uri_port", "sip.listen", "sip.notify_window", "sip.pnp", "sip.pnp_interface", "sip.report_timeout", "sip.sync_trigger", "tftp.listen"}
	for k := range b {
		if strings.HasPrefix(k, "dhcp.") {
			wantRestart = append(wantRestart, k)
		}
	}
	slices.Sort(wantRestart)
	if !slices.Equal(restart, wantRestart) {
		t.Errorf("restart keys %q, want %q", restart, wantRestart)
	}
	eff := configValues(keepRestartKeys(&running, &next))
	for k := range b {
		want := b[k]
		if needsRestart(k) {
			want = a[k]
		}
		if eff[k] != want {
			t.Errorf("in force after reload: %s = %s, want %s", k, eff[k], want)
		}
	}
	// --data wins over data_dir: a changed data_dir then needs nothing.
	if _, restart := diffConfig(&running, &Config{DataDir: "/elsewhere"}, "/data"); slices.Contains(restart, "data_dir") {
		t.Errorf("data_dir named though --data is given")
	}
}

// TestReloadTags: a key's reload tag is "live", "settings" or none; a key
// tagged "settings" changes what settle hands the store, one tagged "live"
// does not (the reload applies it itself). An untagged key may feed the
// settings (sip.sync_trigger): a reload keeps its running value.
func TestReloadTags(t *testing.T) {
	running, next := DefaultConfig(), everyKeyChanged()
	running.HTTP.PublicURL = "http://198.51.100.7:8080/prov/" // not derived from this machine's interfaces
	b, logger := bound{http: 8080, https: 8443, ownCA: true}, slog.New(slog.DiscardHandler)
	before := settingsFor(&running, b, logger)
	nv := reflect.ValueOf(&next).Elem()
	for _, k := range configKeys {
		t.Run(k.name, func(t *testing.T) {
			c := running
			reflect.ValueOf(&c).Elem().FieldByIndex(k.index).Set(nv.FieldByIndex(k.index))
			changed := settingsFor(&c, b, logger) != before
			switch k.reload {
			case "settings":
				if !changed {
					t.Errorf("tagged reload:\"settings\", but the settings do not change with it")
				}
			case "live":
				if changed {
					t.Errorf("tagged reload:\"live\", but it changes the settings: tag it \"settings\"")
				}
			case "":
			default:
				t.Errorf("reload tag %q: want live, settings or none", k.reload)
			}
		})
	}
}

// TestReloadTableDocumented: the README's reload table names every config
// key (the [dhcp] ones as dhcp.*) in exactly one row, in a "need a restart"
// row exactly when the key has no reload tag, and in a "recomputed" row
// only when it is tagged "settings".
func TestReloadTableDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(doc), "| key | on reload |\n| --- | --- |\n")
	if !ok {
		t.Fatal("README.md: no reload table (| key | on reload |)")
	}
	table, _, _ = strings.Cut(table, "\n\n")
	rowOf := map[string]string{}
	for _, row := range strings.Split(table, "\n") {
		for _, m := range regexp.MustCompile("`([a-z_0-9.*]+)`").FindAllStringSubmatch(row, -1) {
			if prev, dup := rowOf[m[1]]; dup && prev != row {
				t.Errorf("README.md: %s is in two rows of the reload table", m[1])
			}
			rowOf[m[1]] = row
		}
	}
	for _, k := range configKeys {
		name := k.name
		if strings.HasPrefix(name, "dhcp.") {
			name = "dhcp.*"
		}
		row, ok := rowOf[name]
		switch {
		case !ok:
			t.Errorf("README.md: the reload table does not name %s", name)
		case strings.Contains(row, "need a restart") != (k.reload == ""):
			t.Errorf("README.md: the reload table's row of %s does not match its reload tag %q:\n%s", name, k.reload, row)
		case strings.Contains(row, "recomputed") && k.reload != "settings":
			t.Errorf("README.md: the reload table says %s recomputes the phones' configs, but it is not tagged reload:\"settings\"", name)
		}
	}
}

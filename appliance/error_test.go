package appliance_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/provbox/provbox/appliance"
	"github.com/provbox/provbox/configs"
)

// fieldsOf lists the fields of every error of err, in order.
func fieldsOf(err error) string {
	var fields []string
	for _, e := range appliance.AllErrors(err) {
		fields = append(fields, e.Field)
	}
	return strings.Join(fields, ",")
}

// TestValidation_EveryField: validation reports every field that breaks a
// rule, not only the first, and the first is what ErrorField names.
func TestValidation_EveryField(t *testing.T) {
	c := configs.MustCatalog()
	str := func(s string) *string { return &s }
	rate := 0
	for _, tc := range []struct {
		name string
		err  error
		want string // the fields, in order
	}{
		{"phone: bad MAC, no model", func() error {
			_, err := (&appliance.Phone{MAC: "00:15:65:12:34:5G", Manufacturer: "Yealink"}).Normalize(c)
			return err
		}(), "mac,model"},
		{"phone: bad MAC, name, description, model", func() error {
			_, err := (&appliance.Phone{MAC: "x", Name: strings.Repeat("n", 65), Description: "a\nb", Model: "T99"}).Normalize(c)
			return err
		}(), "mac,name,description,model"},
		{"phone: too many modules", func() error {
			_, err := (&appliance.Phone{MAC: "001565aabbcc", Model: "T46G", ExpansionModules: 9}).Normalize(c)
			return err
		}(), "expansion_modules"},
		{"phone: fine", func() error {
			_, err := (&appliance.Phone{MAC: "001565aabbcc", Model: "T46G"}).Normalize(c)
			return err
		}(), ""},
		{"extension: number, transport, voicemail", (&appliance.Extension{Number: "10 01", Transport: "sctp", Voicemail: "vm"}).Normalize(""), "number,transport,voicemail"},
		{"extension: no number, bad server", (&appliance.Extension{SIPServer: "pbx:99999"}).Normalize(""), "number,sip_server"},
		{"extension: auth user apart from the number", (&appliance.Extension{Number: "10 01", AuthUser: "a b"}).Normalize(""), "number,auth_user"},
		{"location: no name, callback", (&appliance.Location{CallbackNumber: "call me", PostalCode: strings.Repeat("1", 17)}).Normalize(), "name,postal_code,callback_number"},
		{"key: value and label", (&appliance.Key{Type: "speed_dial", Value: "abc", Label: "a\nb"}).Normalize(), "value,label"},
		{"key: unknown type, no value", (&appliance.Key{Type: "intercom"}).Validate(), "type,value"},
		{"user: name and password", appliance.ValidateUser("a b", "short"), "name,password"},
		{"settings: all three", appliance.SettingsOverrides{ProvisioningURL: str("ftp://x"), Registrar: str("bad host!"), NotifyRate: &rate}.Validate(), "provisioning_url,registrar,notify_rate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fieldsOf(tc.err); got != tc.want {
				t.Fatalf("fields %q, want %q (%v)", got, tc.want, tc.err)
			}
			if tc.want == "" {
				if tc.err != nil {
					t.Fatalf("error %v", tc.err)
				}
				return
			}
			first, _, _ := strings.Cut(tc.want, ",")
			if appliance.ErrorCode(tc.err) != appliance.EINVALID || appliance.ErrorField(tc.err) != first {
				t.Errorf("code %q field %q, want %q %q", appliance.ErrorCode(tc.err), appliance.ErrorField(tc.err), appliance.EINVALID, first)
			}
			if !strings.HasPrefix(appliance.ErrorMessage(tc.err), first+": ") {
				t.Errorf("message %q is not the first error's", appliance.ErrorMessage(tc.err))
			}
		})
	}
}

func TestErrors(t *testing.T) {
	a := appliance.Errorf(appliance.EINVALID, "mac", "bad")
	b := appliance.Errorf(appliance.ECONFLICT, "model", "worse")
	var none appliance.Errors
	if none.Err() != nil {
		t.Error("empty Errors is an error")
	}
	one := appliance.Errors{a}
	if err := one.Err(); err != error(a) {
		t.Errorf("one error: %#v, want the *Error itself", err)
	}
	var es appliance.Errors
	es.Add(nil)
	es.Add(a)
	es.Add(appliance.Errors{b, a})
	if es.Add(errors.New("disk on fire")) || len(es) != 3 {
		t.Fatalf("Add: %v", es)
	}
	wrapped := fmt.Errorf("create phone: %w", appliance.Errors{a, b}.Err())
	var e *appliance.Error
	if !errors.As(wrapped, &e) || e != a {
		t.Errorf("errors.As found %v, want the first", e)
	}
	if !errors.Is(wrapped, b) {
		t.Error("errors.Is does not see the second")
	}
	if got := appliance.AllErrors(wrapped); len(got) != 2 || got[1] != b {
		t.Errorf("AllErrors: %v", got)
	}
	if got := appliance.AllErrors(errors.New("x")); got != nil {
		t.Errorf("AllErrors of a plain error: %v", got)
	}
	if got := (appliance.Errors{a, b}).Error(); got != "mac: bad; model: worse" {
		t.Errorf("Error() = %q", got)
	}
}

func TestCount(t *testing.T) {
	for n, want := range map[int]string{0: "0 phones", 1: "1 phone", 2: "2 phones"} {
		if got := appliance.Count(n, "phone", "phones"); got != want {
			t.Errorf("Count(%d) = %q, want %q", n, got, want)
		}
	}
}

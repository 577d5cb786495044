package sqlite_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/provbox/provbox/appliance"
)

// TestExtensionPhones: the phones holding an extension's account key, and
// whether each keeps another account key when it goes.
func TestExtensionPhones(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	svc := db.Services()
	e101 := mustExt(t, svc, "101", "Alice")
	e102 := mustExt(t, svc, "102", "Bob")
	e103 := mustExt(t, svc, "103", "Carol")
	front := mustPhone(t, svc, "001565000001", "T46G", "101")
	name := "Front desk"
	if _, err := svc.Phones.UpdatePhone(ctx, front.MAC, appliance.PhoneUpdate{Name: &name}); err != nil {
		t.Fatal(err)
	}
	lobby := mustPhone(t, svc, "001565000002", "T46G", "101")
	if _, err := svc.Phones.ReplaceLayout(ctx, lobby.MAC, []appliance.LayoutEntry{{Position: 1, KeyID: e101.AccountKey}, {Position: 2, KeyID: e102.AccountKey}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		id   int64
		want string // title:keeps, …
	}{
		{"on two phones, one keeps another", e101.ID, "00:15:65:00:00:02:true,Front desk (00:15:65:00:00:01):false"},
		{"on one phone beside another", e102.ID, "00:15:65:00:00:02:true"},
		{"on none", e103.ID, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			phones, err := svc.Extensions.ExtensionPhones(ctx, tc.id)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range phones {
				got = append(got, fmt.Sprintf("%s:%v", p.Title(), p.KeepsAccount))
			}
			if strings.Join(got, ",") != tc.want {
				t.Errorf("got %q, want %q", strings.Join(got, ","), tc.want)
			}
		})
	}
	_, err := svc.Extensions.ExtensionPhones(ctx, 9999)
	wantErr(t, err, appliance.ENOTFOUND, "id")

	// The conflict of a delete says its count in words.
	err = svc.Extensions.DeleteExtension(ctx, e102.ID, false)
	if !strings.Contains(err.Error(), "used by 1 phone: ") {
		t.Errorf("conflict %q", err)
	}
}

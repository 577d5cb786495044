package appliance

import (
	"context"
	"strings"
)

// Location is an e911 dispatchable location a phone sits at.
type Location struct {
	ID             int64  `json:"id"`
	Name           string `json:"name"`
	Street         string `json:"street"`
	City           string `json:"city"`
	Region         string `json:"region"`
	PostalCode     string `json:"postal_code"`
	Country        string `json:"country"`
	CallbackNumber string `json:"callback_number"`
}

// LocationUpdate holds the fields to change; nil means unchanged.
type LocationUpdate struct {
	Name           *string `json:"name"`
	Street         *string `json:"street"`
	City           *string `json:"city"`
	Region         *string `json:"region"`
	PostalCode     *string `json:"postal_code"`
	Country        *string `json:"country"`
	CallbackNumber *string `json:"callback_number"`
}

// LocationService manages locations. Errors: EINVALID, ENOTFOUND,
// ECONFLICT (duplicate name; in use by phones without force).
type LocationService interface {
	FindLocations(ctx context.Context) ([]*Location, error)
	FindLocation(ctx context.Context, id int64) (*Location, error)
	CreateLocation(ctx context.Context, l *Location) (*Location, error)
	UpdateLocation(ctx context.Context, id int64, upd LocationUpdate) (*Location, error)
	// DeleteLocation refuses while phones are at it, unless force, which
	// clears their location.
	DeleteLocation(ctx context.Context, id int64, force bool) error
}

// Normalize trims the fields and validates them.
func (l *Location) Normalize() error {
	for _, p := range []*string{&l.Name, &l.Street, &l.City, &l.Region, &l.PostalCode, &l.Country, &l.CallbackNumber} {
		*p = strings.TrimSpace(*p)
	}
	return l.Validate()
}

// Validate checks the location rules and reports every field that breaks
// one (Errors).
func (l *Location) Validate() error {
	var errs Errors
	if l.Name == "" {
		errs.Add(Errorf(EINVALID, "name", "required"))
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{
		{"name", l.Name, 64}, {"street", l.Street, 128}, {"city", l.City, 64}, {"region", l.Region, 64},
		{"postal_code", l.PostalCode, 16}, {"country", l.Country, 64},
	} {
		errs.Add(checkText(f.name, f.v, f.max))
	}
	if l.CallbackNumber != "" && (len(l.CallbackNumber) > 32 || !allIn(l.CallbackNumber, digits+"+")) {
		errs.Add(Errorf(EINVALID, "callback_number", "%q is not a phone number (digits and +, at most 32)", l.CallbackNumber))
	}
	return errs.Err()
}

// Apply copies the set fields of upd onto l.
func (upd LocationUpdate) Apply(l *Location) {
	for _, f := range []struct {
		dst *string
		src *string
	}{
		{&l.Name, upd.Name}, {&l.Street, upd.Street}, {&l.City, upd.City}, {&l.Region, upd.Region},
		{&l.PostalCode, upd.PostalCode}, {&l.Country, upd.Country}, {&l.CallbackNumber, upd.CallbackNumber},
	} {
		if f.src != nil {
			*f.dst = *f.src
		}
	}
}

package appliance

import "context"

// Services bundles the domain services that the edges (webui, tftpd, sip,
// dhcpopt, the CLI) are handed by cmd/provbox.
type Services struct {
	Extensions ExtensionService
	Locations  LocationService
	Phones     PhoneService
	Keys       KeyService
	Users      UserService
	Import     ImportService
	Sync       SyncService
	Discovery  DiscoveryService
	Events     *EventBus
}

// SyncService is the part of the sync loop other packages call.
type SyncService interface {
	// Resync asks for a check-sync NOTIFY to each phone now (ENOTFOUND for
	// an unknown MAC). An empty list means every phone.
	Resync(ctx context.Context, macs []string) error
	// RecordFetch notes that a phone fetched its config: last fetch time,
	// IP and User-Agent, fetched_version, and its SIP address (IP and the
	// configured phone port). Fetching the current version makes it synced.
	RecordFetch(ctx context.Context, f Fetch) error
}

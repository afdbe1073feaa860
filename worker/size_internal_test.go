package worker

import "testing"

func TestSizeWarning(t *testing.T) {
	for _, tc := range []struct {
		name        string
		before, now int64
		limit, want string
	}{
		{"grew past the limit", 10_000_000, 12_500_000, "20%", "image grew by 25% (from 10.0 MB to 12.5 MB; warn above 20%)"},
		{"grew exactly the limit", 10_000_000, 12_000_000, "20%", ""},
		{"grew just past the limit", 10_000_000, 12_000_001, "20%", "image grew by 20% (from 10.0 MB to 12.0 MB; warn above 20%)"},
		{"grew under the limit", 10_000_000, 11_000_000, "20%", ""},
		{"shrank", 10_000_000, 5_000_000, "5%", ""},
		{"fractional growth and limit", 1_000_000, 1_053_000, "2.5%", "image grew by 5.3% (from 1.0 MB to 1.1 MB; warn above 2.5%)"},
		{"small image in kB", 4_000, 204_180, "5%", "image grew by 5004.5% (from 4.0 kB to 204.2 kB; warn above 5%)"},
		{"more than doubled", 800, 2_000_000_000, "100%", "image grew by 249999900% (from 800 B to 2.0 GB; warn above 100%)"},
		{"no limit", 10_000_000, 50_000_000, "", ""},
		{"unreadable limit", 10_000_000, 50_000_000, "20", ""},
		{"nothing before", 0, 50_000_000, "20%", ""},
	} {
		if got := sizeWarning(tc.before, tc.now, tc.limit); got != tc.want {
			t.Errorf("%s: sizeWarning(%d, %d, %q) = %q, want %q", tc.name, tc.before, tc.now, tc.limit, got, tc.want)
		}
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 999: "999 B", 1000: "1.0 kB", 200_123: "200.1 kB", 999_949: "999.9 kB", 999_999: "1.0 MB",
		12_500_000: "12.5 MB", 1_234_567_890: "1.2 GB", 3_000_000_000_000: "3.0 TB",
	} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

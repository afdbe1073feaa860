package bench

import "testing"

func TestRecordedInOrder(t *testing.T) {
	Record(Section{Order: 6, Title: "State at scale"})
	Record(Section{Order: 1, Title: "End to end"})
	Record(Section{Order: 4, Title: "Ingest"})
	Plot(Series{Chart: "ingest", Name: "slipway", Unit: "req/s", X: []float64{1, 16, 64}, Y: []float64{900, 2400, 2560}})
	got, series := recorded()
	var titles []string
	for _, s := range got {
		titles = append(titles, s.Title)
	}
	want := []string{"End to end", "Ingest", "State at scale"}
	if len(titles) != 3 || titles[0] != want[0] || titles[1] != want[1] || titles[2] != want[2] {
		t.Errorf("sections %q, want %q", titles, want)
	}
	if len(series) != 1 || series[0].Name != "slipway" {
		t.Errorf("series %+v, want the one plotted", series)
	}
}

// Package accuracy renders accuracy reports: several systems (a model, the
// random-choice and majority-answer baselines) on several benchmarks (a
// built split, the real OmniMedVQA items), each with accuracy overall, per
// modality and per question type and 95% Wilson intervals, as an aligned
// text table, JSON, and a PNG bar chart drawn with image/draw and
// basicfont (no plotting dependency).
//
// Usage:
//
//	var rep accuracy.Report
//	rep.Add("model", "test split", res.Summary)
//	rep.Add("random", "test split", randomRes.Summary)
//	if err := rep.Save("out/report"); err != nil { … } // accuracy.txt/.json/.png
package accuracy

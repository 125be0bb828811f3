package local.feedback.esanalysis;

import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.analysis.fi.FinnishAnalyzer;
import org.elasticsearch.plugin.NamedComponent;
import org.elasticsearch.plugin.analysis.AnalyzerFactory;

/**
 * The analyzer {@code finnish}: Lucene's {@link FinnishAnalyzer} with its default stop words and no
 * stem exclusions, which is what Elasticsearch's built-in {@code finnish} analyzer (module
 * analysis-common) builds when it is used without settings. Test-only; see README.md.
 */
@NamedComponent("finnish")
public class FinnishAnalyzerFactory implements AnalyzerFactory {

    @Override
    public Analyzer create() {
        return new FinnishAnalyzer();
    }
}

package local.feedback.esanalysis;

import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.analysis.en.EnglishAnalyzer;
import org.elasticsearch.plugin.NamedComponent;
import org.elasticsearch.plugin.analysis.AnalyzerFactory;

/**
 * The analyzer {@code english}: Lucene's {@link EnglishAnalyzer} with its default stop words and no
 * stem exclusions, which is what Elasticsearch's built-in {@code english} analyzer (module
 * analysis-common) builds when it is used without settings. Test-only; see README.md.
 */
@NamedComponent("english")
public class EnglishAnalyzerFactory implements AnalyzerFactory {

    @Override
    public Analyzer create() {
        return new EnglishAnalyzer();
    }
}

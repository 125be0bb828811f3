package local.feedback.esanalysis;

import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.analysis.sv.SwedishAnalyzer;
import org.elasticsearch.plugin.NamedComponent;
import org.elasticsearch.plugin.analysis.AnalyzerFactory;

/**
 * The analyzer {@code swedish}: Lucene's {@link SwedishAnalyzer} with its default stop words and no
 * stem exclusions, which is what Elasticsearch's built-in {@code swedish} analyzer (module
 * analysis-common) builds when it is used without settings. Test-only; see README.md.
 */
@NamedComponent("swedish")
public class SwedishAnalyzerFactory implements AnalyzerFactory {

    @Override
    public Analyzer create() {
        return new SwedishAnalyzer();
    }
}
